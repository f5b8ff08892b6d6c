// Constructs every CPU variant table, so that list_variants() (`gradscope kernels`) shows all
// of them, not only the ones a run has touched. Add a line here when you add a table (and to
// kernels/cuda's register_all_tables for a CUDA one).
#pragma once

namespace gs::kernels {

void register_all_cpu_tables();

// Builds every variant table (the CPU ones, and the CUDA ones in a CUDA build), then
// check_selection(): a GS_KERNELS or --kernel selection that names no op or variant is an error
// before any work starts, not at the op's first use (or never, for an op that is misspelt).
void check_selection_against_every_table();

}  // namespace gs::kernels
