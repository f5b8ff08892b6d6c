// Constructs every CPU variant table, so that list_variants() (`gradscope kernels`) shows all
// of them, not only the ones a run has touched. Add a line here when you add a table.
#pragma once

namespace gs::kernels {

void register_all_cpu_tables();

}  // namespace gs::kernels
