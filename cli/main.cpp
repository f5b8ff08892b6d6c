// gradscope: the command line. Subcommands register themselves (cli/commands.h).
// Exit codes: 0 ok; 2 bad usage or bad input (one clear line on stderr); 1 internal error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tensor/error.h"
#include "train/run_info.h"

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
  try {
    gs::cli::run_selected(app);
  } catch (const gs::Error& e) {
    std::fprintf(stderr, "gradscope: error: %s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "gradscope: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradscope: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
