// gradscope: the command line. Subcommands register themselves (cli/commands.h).
// Exit codes: 0 ok; 2 bad usage or bad input (one clear line on stderr); 1 internal error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "tensor/error.h"
#include "train/distributed.h"
#include "train/run_info.h"

namespace {
// An error ends the command; in a data-parallel run (mpirun) it names the rank and ends every
// rank, which would otherwise wait for this one in their next collective.
int fail(int exit_code, const char* kind, const char* what) {
  const gs::train::LaunchEnv env = gs::train::launch_env();
  if (env.world_size > 1)
    std::fprintf(stderr, "gradscope (rank %d of %d): %s%s\n", env.rank, env.world_size, kind, what);
  else
    std::fprintf(stderr, "gradscope: %s%s\n", kind, what);
  std::fflush(stderr);
  gs::train::abort_data_parallel(exit_code);
  return exit_code;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gradscope " GS_VERSION " — a C++ autodiff and CNN training engine in which every gradient can be seen.\n"
               "Run `gradscope <command> --help` for the flags of a command."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gradscope ") + GS_VERSION);
  gs::train::set_command_line(argc, argv);  // recorded in each run's run.json
  gs::cli::add_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "gradscope: %s\n", e.what());
    return 2;
  }
  const gs::train::LaunchEnv env = gs::train::launch_env();
  const std::string command = app.get_subcommands().at(0)->get_name();
  if (env.world_size > 1 && command != "train" && command != "bench") {
    // Each process would run the whole command and write the same files.
    const std::string why = "`" + command + "` runs in one process; of the commands only `train` (and `bench`, " +
                            "which times it) run data-parallel under mpirun (this is rank " + std::to_string(env.rank) +
                            " of " + std::to_string(env.world_size) + ")";
    std::fprintf(stderr, "gradscope: error: %s\n", why.c_str());
    return 2;
  }
  try {
    gs::cli::run_selected(app);
  } catch (const gs::Error& e) {
    return fail(2, "error: ", e.what());
  } catch (const std::invalid_argument& e) {
    return fail(2, "error: ", e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be made or written (--out under a file, /proc, ...): its
    // text names the call and the path.
    return fail(2, "error: ", e.what());
  } catch (const nlohmann::json::type_error& e) {
    // 316: a path or name that is not UTF-8 (e.g. --out $'run\xe9') going into a JSON file.
    if (e.id == 316)
      return fail(2, "error: a path or name given is not valid UTF-8, which JSON files need: ", e.what());
    return fail(1, "internal error: ", e.what());
  } catch (const std::exception& e) {
    return fail(1, "internal error: ", e.what());
  }
  return 0;
}
