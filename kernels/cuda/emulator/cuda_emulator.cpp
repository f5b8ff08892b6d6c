// The emulator's scheduler (cuda_emulator.h): a block's threads are ucontext fibers run in
// thread order until each finishes or parks at a barrier or a shuffle; a barrier opens when
// every thread of the block waits at it, a shuffle when every lane of its warp does. A kernel
// whose first thread finishes without a barrier or shuffle runs the rest of its threads as
// plain calls (fast); one of them reaching a barrier after all is an error, as that barrier
// would be divergent on the GPU too.
#include "kernels/cuda/emulator/cuda_emulator.h"

#include <ucontext.h>

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace gs::kernels::cuda::emu {
namespace {

constexpr int kWarp = 32;
constexpr size_t kStackBytes = 64 * 1024;

enum class State { Runnable, AtBarrier, AtShuffle, Done };

struct Fiber {
  ucontext_t context;
  State state = State::Runnable;
  Dim3 index;
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;  // kept across launches
  std::vector<uint64_t> slots;                  // one shuffle value per thread
  ucontext_t scheduler;
  size_t current = 0;
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
};

Block g_block;
bool g_running = false;
bool g_direct = false;  // running threads as plain calls: a barrier now is an error
Order g_order = Order::Forward;
std::mutex g_launch_mutex;  // one kernel at a time, as on one stream
LaunchStats g_stats;
std::atomic<int64_t> g_launches{0};

std::string where(const Dim3& b, const Dim3& t);
std::string where_now() { return where(block_idx, thread_idx); }

Fiber& current_fiber() {
  if (!g_running) throw std::logic_error("cuda emulator: __syncthreads or a shuffle outside a kernel launch");
  if (g_direct)
    throw std::runtime_error("cuda emulator: " + where_now() +
                             " reached a barrier or shuffle that thread (0,0,0) of block (0,0,0) never reached: "
                             "the kernel's barriers are divergent");
  return g_block.fibers[g_block.current];
}

void park(State s) {
  Fiber& f = current_fiber();
  f.state = s;
  swapcontext(&f.context, &g_block.scheduler);
}

void fiber_main() {
  try {
    (*g_block.body)();
  } catch (...) {
    if (!g_block.error) g_block.error = std::current_exception();
  }
  g_block.fibers[g_block.current].state = State::Done;
}  // returns to uc_link: the scheduler

std::string where(const Dim3& b, const Dim3& t) {
  return "block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ") thread (" +
         std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + ")";
}

// Opens the shuffle of the warp starting at thread w if every lane waits at it.
bool open_shuffle(size_t w) {
  auto& f = g_block.fibers;
  const size_t end = w + kWarp < f.size() ? w + kWarp : f.size();
  size_t waiting = 0, done = 0;
  for (size_t i = w; i < end; ++i) waiting += f[i].state == State::AtShuffle, done += f[i].state == State::Done;
  if (waiting == 0 || waiting + done != end - w) return false;
  if (done > 0)
    throw std::runtime_error("cuda emulator: a full-mask shuffle at " + where(block_idx, f[w].index) +
                             "'s warp while " + std::to_string(done) + " of its lanes have exited");
  for (size_t i = w; i < end; ++i) f[i].state = State::Runnable;
  return true;
}

void resume(size_t i) {
  g_block.current = i;
  thread_idx = g_block.fibers[i].index;
  swapcontext(&g_block.scheduler, &g_block.fibers[i].context);
  if (g_block.error) std::rethrow_exception(g_block.error);
}

// Runs every thread that can run until each is parked or done; true if a shuffle opened on the way.
bool run_round() {
  auto& f = g_block.fibers;
  const size_t n = f.size();
  if (g_order == Order::WarpAhead) {  // each warp through its shuffles up to a barrier, before the next warp
    bool opened = false;
    for (size_t w = 0; w < n; w += kWarp) {
      do {
        for (size_t i = w; i < n && i < w + kWarp; ++i)
          if (f[i].state == State::Runnable) resume(i);
      } while (open_shuffle(w) && (opened = true));
    }
    return opened;
  }
  for (size_t k = 0; k < n; ++k) {
    const size_t i = g_order == Order::Forward ? k : n - 1 - k;
    if (f[i].state == State::Runnable) resume(i);
  }
  bool opened = false;
  for (size_t w = 0; w < n; w += kWarp) opened = open_shuffle(w) || opened;
  return opened;
}

void run_block() {
  auto& f = g_block.fibers;
  for (;;) {
    if (run_round()) continue;
    size_t done = 0, barrier = 0;
    for (const auto& x : f) done += x.state == State::Done, barrier += x.state == State::AtBarrier;
    if (done == f.size()) return;
    if (barrier == f.size()) {
      for (auto& x : f) x.state = State::Runnable;
      g_stats.barriers++;
      continue;
    }
    // Nothing can run: name one thread at a barrier and one that is elsewhere.
    size_t at = 0, other = 0;
    for (size_t i = 0; i < f.size(); ++i) (f[i].state == State::AtBarrier ? at : other) = i;
    const char* other_state = f[other].state == State::Done ? "has exited" : "waits at a shuffle";
    throw std::runtime_error("cuda emulator: __syncthreads at " + where(block_idx, f[at].index) +
                             " is never reached by every thread: " + where(block_idx, f[other].index) + " " +
                             other_state);
  }
}

// Apart from run_grid: getcontext returns twice, which would put run_grid's locals at risk.
[[gnu::noinline]] void init_fiber(size_t i, Dim3 index) {
  Fiber& f = g_block.fibers[i];
  f.state = State::Runnable;
  f.index = index;
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = g_block.stacks[i].get();
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = &g_block.scheduler;
  makecontext(&f.context, fiber_main, 0);
}

void check_launch(const Dim3& grid, const Dim3& block) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("cuda emulator: invalid launch <<<(" + std::to_string(grid.x) + "," +
                                std::to_string(grid.y) + "," + std::to_string(grid.z) + "), (" +
                                std::to_string(block.x) + "," + std::to_string(block.y) + "," +
                                std::to_string(block.z) + ")>>>: " + why);
  };
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z) fail("a dimension is 0");
  if (uint64_t(block.x) * block.y * block.z > 1024) fail("more than 1024 threads per block");
  if (block.x > 1024 || block.y > 1024 || block.z > 64) fail("block dimension over (1024, 1024, 64)");
  if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) fail("grid dimension over (2^31-1, 65535, 65535)");
}

}  // namespace

const LaunchStats& last_launch() { return g_stats; }
int64_t launch_count() { return g_launches.load(); }
void set_order(Order order) { g_order = order; }

void syncthreads() { park(State::AtBarrier); }

void shuffle_down(unsigned mask, const void* value, void* out, unsigned bytes, unsigned delta) {
  if (mask != 0xffffffffu) throw std::logic_error("cuda emulator: only full-mask shuffles are modelled");
  const size_t threads = g_block.fibers.size();
  if (threads % kWarp != 0)
    throw std::runtime_error("cuda emulator: shuffle in a block of " + std::to_string(threads) +
                             " threads (a partial warp's missing lanes give undefined values)");
  const size_t me = g_block.current;
  std::memcpy(&g_block.slots[me], value, bytes);
  park(State::AtShuffle);  // every lane has written
  const size_t lane = me % kWarp, src = lane + delta < size_t(kWarp) ? me + delta : me;
  std::memcpy(out, &g_block.slots[src], bytes);
  park(State::AtShuffle);  // every lane has read before the next shuffle writes
  g_stats.shuffles += lane == 0;
}

LaunchHooks& hooks() {  // function-local: set from other files' code at any time, even static init
  static LaunchHooks h;
  return h;
}
void set_launch_hooks(LaunchHooks h) { hooks() = std::move(h); }

void run_grid(Dim3 grid, Dim3 block, const std::function<void()>& body) {
  check_launch(grid, block);
  if (g_running) throw std::logic_error("cuda emulator: a launch inside a kernel");
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  const size_t threads = size_t(block.x) * block.y * block.z;
  g_block.fibers.assign(threads, Fiber{});
  while (g_block.stacks.size() < threads) g_block.stacks.push_back(std::make_unique<char[]>(kStackBytes));
  g_block.slots.assign(threads, 0);
  g_block.body = &body;
  g_block.error = nullptr;
  g_stats = LaunchStats{};
  g_launches++;
  grid_dim = grid;
  block_dim = block;
  g_running = true;
  g_direct = false;
  if (hooks().begin) hooks().begin();
  struct Stop {
    ~Stop() {
      g_running = g_direct = false;
      if (hooks().end) hooks().end();
    }
  } stop;
  auto thread_index = [&](size_t i) {
    return Dim3(unsigned(i % block.x), unsigned(i / block.x % block.y), unsigned(i / (size_t(block.x) * block.y)));
  };
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  for (uint64_t b = 0; b < blocks; ++b) {
    block_idx = Dim3(unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / (uint64_t(grid.x) * grid.y)));
    if (g_direct) {  // no barriers: each thread is a plain call
      for (size_t k = 0; k < threads; ++k) {
        thread_idx = thread_index(g_order == Order::Reverse ? threads - 1 - k : k);
        body();
      }
    } else {
      for (size_t i = 0; i < threads; ++i) init_fiber(i, thread_index(i));
      if (b == 0) {  // the first thread alone: if it finishes without a barrier, the rest run as calls
        resume(0);
        if (g_block.fibers[0].state == State::Done) {
          g_direct = true;
          for (size_t k = 0; k + 1 < threads; ++k) {
            thread_idx = thread_index(g_order == Order::Reverse ? threads - 1 - k : k + 1);
            body();
          }
        }
      }
      if (!g_direct) run_block();
    }
    g_stats.blocks++;
    g_stats.threads += int64_t(threads);
  }
}

}  // namespace gs::kernels::cuda::emu
