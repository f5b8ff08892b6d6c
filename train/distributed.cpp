// The process group over MPI (GS_MPI builds), or a world of one. Tensors travel as f64 through
// host buffers: one message per call, whatever the number of tensors, and the same code for any
// device and dtype (i64 buffers such as num_batches_tracked stay exact below 2^53).
#include "train/distributed.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <memory>

#include "tensor/error.h"
#include "tensor/raw_ops.h"

#ifdef GS_MPI
// MPI's C API only: mpi.h would otherwise declare the deprecated C++ bindings, from another library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace gs::train {

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  return (end && *end == '\0' && x >= 0) ? int(x) : fallback;
}

// A tensor the pack and unpack loops read and write in place: contiguous, in host memory, f32/f64.
bool host_dense(const Tensor& t) {
  return t.device().is_cpu() && t.is_contiguous() && (t.dtype() == DType::F32 || t.dtype() == DType::F64);
}

template <class T> void widen(const Tensor& t, double* out) {
  const T* src = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) out[i] = double(src[i]);
}

template <class T> void narrow(const double* in, double scale, const Tensor& t) {
  T* dst = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) dst[i] = T(in[i] * scale);
}

// The number of values in the defined tensors.
size_t defined_numel(const std::vector<Tensor>& tensors) {
  size_t total = 0;
  for (const Tensor& t : tensors)
    if (t.defined()) total += size_t(t.numel());
  return total;
}

// One MPI message holds at most INT_MAX values.
[[maybe_unused]] int message_count(size_t values, int rank) {
  GS_CHECK(values <= size_t(INT_MAX), "data-parallel: %zu values in one collective (rank %d); at most %d", values, rank,
           INT_MAX);
  return int(values);
}

// The values of the defined tensors, end to end, in logical order, into `flat` (reused between
// calls: a training step all-reduces the same gradients every time).
void pack(const std::vector<Tensor>& tensors, std::vector<double>& flat) {
  flat.resize(defined_numel(tensors));
  double* at = flat.data();
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (host_dense(t) && t.dtype() == DType::F32) {
      widen<float>(t, at);
    } else if (host_dense(t)) {
      widen<double>(t, at);
    } else {  // strided, on a GPU, or integer: the general copy
      std::vector<double> values = t.to_vector<double>();
      std::copy(values.begin(), values.end(), at);
    }
    at += t.numel();
  }
}

void unpack(const std::vector<double>& flat, const std::vector<Tensor>& tensors, double scale) {
  const double* at = flat.data();
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (host_dense(t) && t.dtype() == DType::F32) {
      narrow<float>(at, scale, t);
    } else if (host_dense(t)) {
      narrow<double>(at, scale, t);
    } else {
      std::vector<double> values(at, at + t.numel());
      if (scale != 1)
        for (double& v : values) v *= scale;
      raw::copy_(t, from_vector(values, t.shape(), {.dtype = t.dtype()}));
    }
    at += t.numel();
  }
}
}  // namespace

LaunchEnv launch_env() {
  LaunchEnv env;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    env.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    env.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    env.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (std::getenv("PMI_SIZE")) {
    env.world_size = env_int("PMI_SIZE", 1);
    env.rank = env_int("PMI_RANK", 0);
    env.local_rank = env_int("MPI_LOCALRANKID", env_int("SLURM_LOCALID", 0));
  }
  if (env.world_size < 1) env.world_size = 1;
  return env;
}

bool have_mpi() {
#ifdef GS_MPI
  return true;
#else
  return false;
#endif
}

ProcessGroup::ProcessGroup(LaunchEnv env) : env_(env) {}

ProcessGroup& ProcessGroup::world() {
  static std::unique_ptr<ProcessGroup> group = [] {
    LaunchEnv env = launch_env();
    if (env.world_size == 1) return std::unique_ptr<ProcessGroup>(new ProcessGroup(env));
#ifdef GS_MPI
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      GS_CHECK(MPI_Init(nullptr, nullptr) == MPI_SUCCESS, "data-parallel: MPI_Init failed (rank %d of %d)", env.rank,
               env.world_size);
      std::atexit([] {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (!finalised) MPI_Finalize();
      });
    }
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    GS_CHECK(rank == env.rank && size == env.world_size,
             "data-parallel: MPI says rank %d of %d, the launcher's environment rank %d of %d", rank, size, env.rank,
             env.world_size);
    return std::unique_ptr<ProcessGroup>(new ProcessGroup(env));
#else
    GS_CHECK(false,
             "data-parallel: launched as rank %d of %d processes, but this gradscope was built without MPI; install "
             "libopenmpi-dev (scripts/setup.sh does) and rebuild",
             env.rank, env.world_size);
    return std::unique_ptr<ProcessGroup>();
#endif
  }();
  return *group;
}

void ProcessGroup::all_reduce_sum(std::vector<double>& values) {
  if (size() == 1 || values.empty()) return;
#ifdef GS_MPI
  GS_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), message_count(values.size(), rank()), MPI_DOUBLE, MPI_SUM,
                         MPI_COMM_WORLD) == MPI_SUCCESS,
           "data-parallel: MPI_Allreduce of %zu values failed on rank %d", values.size(), rank());
#endif
}

void ProcessGroup::all_reduce_scaled(const char* op, const std::vector<Tensor>& tensors, double scale) {
  for (const Tensor& t : tensors) {
    GS_CHECK(!t.defined() || t.dtype() == DType::F32 || t.dtype() == DType::F64,
             "data-parallel: %s takes f32 or f64 tensors, got %s", op, t.describe().c_str());
  }
  if (size() == 1) return;
  pack(tensors, buffer_);
  all_reduce_sum(buffer_);
  unpack(buffer_, tensors, scale);
}

void ProcessGroup::all_reduce_mean(const std::vector<Tensor>& tensors) {
  all_reduce_scaled("all_reduce_mean", tensors, 1.0 / size());
}

void ProcessGroup::all_reduce_sum(const std::vector<Tensor>& tensors) {
  all_reduce_scaled("all_reduce_sum", tensors, 1.0);
}

void ProcessGroup::broadcast(const std::vector<Tensor>& tensors, int root) {
  if (size() == 1) return;
  if (rank() == root) {
    pack(tensors, buffer_);
  } else {
    buffer_.resize(defined_numel(tensors));  // filled by the broadcast
  }
#ifdef GS_MPI
  GS_CHECK(
      MPI_Bcast(buffer_.data(), message_count(buffer_.size(), rank()), MPI_DOUBLE, root, MPI_COMM_WORLD) == MPI_SUCCESS,
      "data-parallel: MPI_Bcast of %zu values failed on rank %d", buffer_.size(), rank());
#endif
  if (rank() != root) unpack(buffer_, tensors, 1.0);
}

double ProcessGroup::broadcast_value(double value, int root) {
  if (size() == 1) return value;
#ifdef GS_MPI
  GS_CHECK(MPI_Bcast(&value, 1, MPI_DOUBLE, root, MPI_COMM_WORLD) == MPI_SUCCESS,
           "data-parallel: MPI_Bcast failed on rank %d", rank());
#endif
  return value;
}

void abort_data_parallel(int exit_code) {
#ifdef GS_MPI
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (initialised && !finalised) MPI_Abort(MPI_COMM_WORLD, exit_code);
#else
  (void)exit_code;
#endif
}

}  // namespace gs::train
