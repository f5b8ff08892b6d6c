// Data-parallel training across processes, as torch's DistributedDataParallel does it: every
// process holds the whole model, trains on its own part of each epoch, and the gradients are
// averaged before each optimizer step, so all processes take the same steps.
//
//   mpirun -np 2 gradscope train --threads 1 ...      (Open MPI; the trainer uses ProcessGroup::world())
//   ProcessGroup& world = ProcessGroup::world();
//   world.broadcast(model.parameters());            // rank 0's initial weights everywhere
//   backward(loss); world.all_reduce_mean(grads);   // then optimizer.step() on every rank
//
// Outside a launcher the world is one process and every call here returns at once; MPI is then
// never initialised. The data sharding itself is io::DataLoaderOptions::num_shards.
#pragma once
#include <string>
#include <vector>

#include "autograd/collective.h"
#include "tensor/tensor.h"

namespace gs::train {

// How this process was launched, from the launcher's environment: Open MPI's mpirun
// (OMPI_COMM_WORLD_SIZE, _RANK, _LOCAL_RANK), or a PMI launcher (MPICH's hydra, Slurm:
// PMI_SIZE, PMI_RANK). Without them: a world of one.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // rank among the processes on this machine (picks the GPU)
};
LaunchEnv launch_env();
// Whether this build can run data-parallel (it found MPI at configure time).
bool have_mpi();

// The processes of one data-parallel run. world() is the one explicit global of this file: it is
// made on first use (MPI_Init when world_size > 1, MPI_Finalize at exit) and is used from one
// thread. Every collective must be called by every rank in the same order. It is the Collective
// of autograd's all_reduce_sum and of the batch norms that --sync-bn synchronises.
class ProcessGroup : public Collective {
 public:
  // Throws when launched with more than one process by a build without MPI.
  static ProcessGroup& world();

  int rank() const { return env_.rank; }
  int size() const override { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }

  // Each tensor (f32 or f64, any device, its shape agreed by every rank) becomes the mean of its
  // values over the processes; the sum is taken in f64. Undefined tensors are skipped (every rank
  // must skip the same ones).
  void all_reduce_mean(const std::vector<Tensor>& tensors);
  // The same, the sum (Collective's all-reduce).
  void all_reduce_sum(const std::vector<Tensor>& tensors) override;
  // Each tensor (any dtype, any device) takes rank `root`'s values.
  void broadcast(const std::vector<Tensor>& tensors, int root = 0);
  // Element-wise sums over the processes, in place.
  void all_reduce_sum(std::vector<double>& values) override;
  // Rank `root`'s value.
  double broadcast_value(double value, int root = 0);

 private:
  explicit ProcessGroup(LaunchEnv env);
  void all_reduce_scaled(const char* op, const std::vector<Tensor>& tensors, double scale);
  LaunchEnv env_;
  std::vector<double> buffer_;  // the f64 message of the last collective, kept for the next
};

// Ends every process of the run with `exit_code` (MPI_Abort) when MPI is running: what a rank
// that failed must do, since the others would wait for it in their next collective. Otherwise
// (a world of one, MPI never initialised or already finalised) it returns.
void abort_data_parallel(int exit_code);

}  // namespace gs::train
