// Activation checkpointing, as torch.utils.checkpoint (use_reentrant=False): memory for compute.
//
//   Tensor y = gs::checkpoint([&](const Tensor& x) { return (*block)(x); }, x);
//   gs::backward(loss(y));   // block's forward runs again here, just before its backward needs it
//
// fn's ops are recorded on the tape as usual (the same entries, module paths and hooks), but none
// of their saved tensors are kept: only fn's inputs are. When backward first reaches one of those
// entries, fn runs again on the same inputs and the saved tensors of all of them are refilled;
// each is dropped again once its backward has run, so a second backward (retain_graph) recomputes
// once more. Without retain_graph, the checkpoint itself (its inputs) is freed once the last of its
// entries has run backward, so a chain of checkpoints gives its memory back segment by segment.
// The gradients are bit-for-bit those without checkpointing, create_graph included.
//
// What makes the second run the same as the first:
// - dropout draws again from the generator state it drew from the first time (any generator, and
//   the per-rank stream of a data-parallel run); the generators are then put back as they were;
// - batch norm in training normalises with the batch's statistics again but leaves its running
//   statistics and num_batches_tracked alone, so they are updated once per forward, as without;
// - tape forward hooks and module forward and backward hooks do not fire in the second run, and its
//   entries do not appear on the tape (inspect/ sees each op once, from the first run);
// - fn must record the same ops in the same order again; if not, backward stops with an error.
// A checkpoint inside a checkpoint's fn is part of the outer one. Without grad mode, checkpoint
// just calls fn.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "autograd/tape.h"

namespace gs {

class Generator;

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
std::vector<Tensor> checkpoint(CheckpointFn fn, const std::vector<Tensor>& inputs);
Tensor checkpoint(std::function<Tensor(const Tensor&)> fn, const Tensor& input);

// True while a checkpoint's fn runs again inside backward (layers skip their bookkeeping then).
bool is_recomputing();

// What the checkpoint an entry was recorded in keeps for its second run: its inputs' data (for
// memory accounting, inspect/saved_memory.h). Empty for an entry recorded outside a checkpoint.
const std::vector<Tensor>& checkpoint_inputs(const Entry& entry);

// For random ops: call with the generator right before drawing from it. In a checkpoint's first run
// it notes the generator's state; in the second it sets that state back.
void checkpoint_random_draw(Generator& generator);

// The tape's side (autograd/tape.cpp), not for users.
namespace checkpoint_detail {
// Called by record() for each entry: inside a first run, drops the saved tensors and ties the
// entry to its checkpoint (returns false); inside a second run, keeps the saved tensors for the
// first run's entry of the same position (returns true: the entry is a throwaway, not taped).
bool adopt(Entry& entry, std::vector<Tensor>& saved);
// The entry's saved tensors, recomputing its checkpoint if they are not there.
std::vector<Tensor> take_saved(Entry& entry);
// Drops what a backward pass recomputed and did not use.
void end_pass();
}  // namespace checkpoint_detail

}  // namespace gs
