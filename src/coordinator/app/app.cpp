// The dispatcher: subcommands by name (a table), else the quantize command: options →
// run_quantize() (plan, dry-run print or the run; one process or every rank under mpirun).
// Exceptions propagate to main.cpp, which maps them to exit codes. The run's own log file
// (<output_dir>/quantize.log) is opened by run_quantize(), which owns the output directory; an
// explicit --log-file is opened here.
#include "coordinator/app/app.h"

#include <iostream>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/app/commands.h"
#include "coordinator/options/options.h"
#include "coordinator/run/run.h"

namespace sq::coordinator {
namespace {

struct Subcommand {
  const char* name;
  int (*run)(const std::vector<std::string>&);
};
constexpr Subcommand kSubcommands[] = {
    {"tokenize", cmd_tokenize},
    {"eval", cmd_eval},
    {"synth", cmd_synth},
};

int run_quantize_command(const std::vector<std::string>& args) {
  const ParseResult parsed = parse_options(args, environment_from_process());
  switch (parsed.outcome) {
    case ParseOutcome::kHelp:
      std::cout << help_text();
      return 0;
    case ParseOutcome::kHelpMarkdown:
      std::cout << help_markdown();
      return 0;
    case ParseOutcome::kVersion:
      std::cout << "shardquant " << SQ_VERSION << "\n";
      return 0;
    case ParseOutcome::kRun:
      break;
  }
  const Options& opts = parsed.options;
  init_logging(opts.verbosity);
  // An explicit --log-file is honoured for --dry-run too; the run's default log lives in the
  // output directory, which a dry run must not create.
  if (!opts.log_file.empty()) add_log_file(opts.log_file);
  log()->info("shardquant {} {} w{} g{} model {}", SQ_VERSION, to_string(opts.method), opts.bits,
              opts.group_size, opts.model_path);

  // Every launch is the same run: a plain process is one rank over the local transport; under
  // mpirun (or an explicit --transport mpi|nccl) rank 0 plans and prints the distributed plan for
  // --dry-run.
  return run_quantize(opts);
}

}  // namespace

int run_app(int argc, char** argv) {
  init_logging();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty()) {
    for (const auto& s : kSubcommands)
      if (args[0] == s.name) return s.run({args.begin() + 1, args.end()});
    if (args[0] == "quantize") args.erase(args.begin());
  }
  return run_quantize_command(args);
}

}  // namespace sq::coordinator
