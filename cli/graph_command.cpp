// `gradscope graph`: the tape of one forward pass (and, with --backward, the gradient each entry
// received), for students: one line per entry, in the order the ops ran, with the module that ran
// it and the shapes; --dot writes the same graph for Graphviz (`dot -Tsvg graph.dot > graph.svg`).
// The batch is the first --batch training images in file order with the default normalisation,
// as `gradscope grads` takes them; the loss is mean cross-entropy. --create-graph runs that
// backward with create_graph and prints the entries it recorded: the backward pass as a graph of
// its own (which a double backward would walk), derivative entries shown as "<op>_backward".
// --memory adds what each entry saved for backward and a table by top-level module
// (inspect/saved_memory.h); with --recompute-segments, what checkpointing keeps instead.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include "autograd/tape.h"
#include "cli/commands.h"
#include "inspect/saved_memory.h"
#include "inspect/stats.h"
#include "io/dataloader.h"
#include "io/safetensors.h"  // write_file_atomic
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {

struct GraphOptions {
  std::string dot;
  bool backward = false;
  bool create_graph = false;
  bool memory = false;
};

std::string entry_line(const Entry& e, const std::map<int64_t, double>& grad_norms);

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + shape_str(shapes[i]);
  return s;
}

std::string dot_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

// Graphviz: an ellipse per tape entry (op, module, output shape, and |dL/dy| when known), a box
// per leaf that requires grad (parameters by name), a grey box per input that needs none (data,
// labels); edges run from what an entry read to the entry.
std::string to_dot(const std::vector<std::shared_ptr<Entry>>& entries, const std::map<int64_t, double>& grad_norms) {
  std::ostringstream dot;
  dot << "digraph tape {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::map<const Entry*, int64_t> seq_of;
  for (const auto& e : entries) seq_of[e.get()] = e->seq;
  std::map<const AutogradMeta*, std::string> leaves;
  int data_inputs = 0;
  for (const auto& e : entries) {
    std::string label = entry_name(*e) + (e->scope.empty() ? "" : " (" + e->scope + ")") + "\\n" +
                        dot_escape(shapes_str(e->output_shapes));
    auto g = grad_norms.find(e->seq);
    if (g != grad_norms.end()) label += format("\\n|dL/dy| %.4g", g->second);
    dot << "  e" << e->seq << " [label=\"#" << e->seq << " " << label << "\"];\n";
    for (size_t i = 0; i < e->inputs.size(); ++i) {
      const auto& meta = e->inputs[i];
      std::string from;
      if (!meta) {
        from = "d" + std::to_string(data_inputs++);
        dot << "  " << from << " [shape=box, style=filled, fillcolor=\"#eeeeee\", label=\"input "
            << dot_escape(shape_str(e->input_shapes[i])) << "\"];\n";
      } else if (meta->entry && seq_of.count(meta->entry.get())) {
        from = "e" + std::to_string(seq_of[meta->entry.get()]);
      } else {
        auto [it, fresh] = leaves.emplace(meta.get(), "l" + std::to_string(leaves.size()));
        from = it->second;
        if (fresh) {
          const std::string name = meta->name.empty() ? "leaf" : meta->name;
          dot << "  " << from << " [shape=box, label=\"" << dot_escape(name) << "\\n"
              << dot_escape(shape_str(e->input_shapes[i])) << "\"];\n";
        }
      }
      dot << "  " << from << " -> e" << e->seq << ";\n";
    }
  }
  dot << "}\n";
  return dot.str();
}

std::string entry_line(const Entry& e, const std::map<int64_t, double>& grad_norms) {
  std::string line = format("#%lld %s", (long long)e.seq, entry_name(e).c_str());
  if (!e.scope.empty()) line += " (" + e.scope + ")";
  line += " " + shapes_str(e.output_shapes) + " <- " + shapes_str(e.input_shapes);
  auto g = grad_norms.find(e.seq);
  if (g != grad_norms.end()) line += format("   |dL/dy| %.6g", g->second);
  return line;
}

}  // namespace

void add_graph(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto options = std::make_shared<GraphOptions>();
  config->batch_size = 2;
  CLI::App* cmd = app.add_subcommand(
      "graph",
      "print the tape (Wengert list) of one forward pass: op, module, shapes; --backward adds each entry's "
      "output gradient norm, --create-graph the entries the backward pass records, --memory the bytes each "
      "entry keeps for backward, --dot writes a Graphviz file");
  train::TrainConfig& c = *config;
  add_model_data_flags(cmd, c);
  cmd->add_option("--weights", c.weights, "weights: a state_dict or checkpoint .safetensors (default: seeded init)");
  cmd->add_option("--seed", c.seed, "seed of the initialisation when no --weights")->capture_default_str();
  cmd->add_option("--batch", c.batch_size, "number of training images, taken in file order")->capture_default_str();
  cmd->add_flag("--backward", options->backward, "also run backward and show |dL/dy| for every entry's output");
  cmd->add_flag("--create-graph", options->create_graph,
                "run that backward with create_graph (implies --backward) and also print the entries it recorded: "
                "the gradient's own graph; --dot then holds both");
  cmd->add_flag("--memory", options->memory,
                "also show the memory forward keeps for backward: each entry's saved tensors (parameters and buffers "
                "not counted, each storage once, at the first entry holding it) and the total by top-level module");
  add_recompute_flag(cmd, c);
  cmd->add_option("--dot", options->dot, "write the graph as a Graphviz .dot file");
  register_action(cmd, [config, options] {
    const train::TrainConfig& c = *config;
    auto [batch, model] = first_batch_and_model(c, "graph");

    Tensor loss = cross_entropy((*model)(batch.images), batch.labels);
    const std::vector<std::shared_ptr<Entry>> entries = tape_entries();
    std::printf("tape of one forward pass: %zu entries, loss %.6f (%s, batch %lld)\n", entries.size(), loss.item(),
                c.model_spec.empty() ? c.model.c_str() : c.model_spec.c_str(), (long long)c.batch_size);
    std::vector<Tensor> weights;  // parameters and buffers: there whether or not anything is saved
    for (auto& [name, t] : model->state_dict()) weights.push_back(t);
    const inspect::SavedMemory memory = inspect::saved_memory(entries, weights);  // before backward frees any
    std::map<int64_t, std::string> saved_notes;                                   // entry seq -> "saved ..."
    if (options->memory) {
      for (const auto& row : memory.entries) {
        if (row.bytes == 0) continue;
        std::string note = format("   saved %s (%lld)", inspect::bytes_str(row.bytes).c_str(), (long long)row.tensors);
        if (row.checkpoint_bytes > 0) note += " checkpoint input";
        saved_notes[row.seq] = note;
      }
    }
    std::map<int64_t, double> grad_norms;  // entry seq -> |dL/d(output 0)|
    if (options->backward || options->create_graph) {
      int id = add_backward_hook([&](const Entry& e, const std::vector<Tensor>& grad_out, const std::vector<Tensor>&) {
        if (!grad_out.empty() && grad_out[0].defined()) grad_norms[e.seq] = inspect::tensor_stats(grad_out[0], false).norm;
      });
      backward(loss, Tensor(), /*retain_graph=*/true, options->create_graph);
      remove_hook(id);
    }
    for (const auto& e : entries) {
      auto note = saved_notes.find(e->seq);
      std::printf("%s%s\n", entry_line(*e, grad_norms).c_str(), note == saved_notes.end() ? "" : note->second.c_str());
    }
    if (options->memory) {
      std::printf("saved for backward: %s (%lld bytes) in %lld tensors (parameters and buffers not counted)",
                  inspect::bytes_str(memory.total_bytes).c_str(), (long long)memory.total_bytes,
                  (long long)memory.total_tensors);
      if (c.recompute_segments > 1) {
        std::printf(", %s of them checkpoint inputs (--recompute-segments %lld)",
                    inspect::bytes_str(memory.checkpoint_bytes).c_str(), (long long)c.recompute_segments);
      }
      std::printf("\n  %-12s %12s %12s %7s\n", "module", "saved", "bytes", "share");
      for (const auto& [module, bytes] : memory.by_module) {
        std::printf("  %-12s %12s %12lld %6.1f%%\n", module.empty() ? "(none)" : module.c_str(),
                    inspect::bytes_str(bytes).c_str(), (long long)bytes,
                    memory.total_bytes > 0 ? 100.0 * double(bytes) / double(memory.total_bytes) : 0.0);
      }
    }
    std::vector<std::shared_ptr<Entry>> shown = entries;
    if (options->create_graph) {
      // What the backward recorded: everything on the tape after the forward's last entry (the
      // parameters' .grad keep it alive).
      const int64_t last_forward = entries.empty() ? -1 : entries.back()->seq;
      std::vector<std::shared_ptr<Entry>> recorded;
      for (auto& e : tape_entries()) {
        if (e->seq > last_forward) recorded.push_back(e);
      }
      std::printf("tape of the backward pass (create_graph): %zu entries, %zu of them derivative entries\n",
                  recorded.size(),
                  static_cast<size_t>(
                      std::count_if(recorded.begin(), recorded.end(), [](const auto& e) { return e->derivative; })));
      for (const auto& e : recorded) std::printf("%s\n", entry_line(*e, {}).c_str());
      shown.insert(shown.end(), recorded.begin(), recorded.end());
    }
    if (!options->dot.empty()) {
      io::write_file_atomic(options->dot, to_dot(shown, grad_norms));
      std::printf("graph -> %s (render: dot -Tsvg %s -o graph.svg)\n", options->dot.c_str(), options->dot.c_str());
    }
  });
}

const CommandRegistration register_graph{65, add_graph};

}  // namespace gs::cli
