// Entry point behind main(): parses the command line (subcommands: quantize (default),
// tokenize, eval, synth) and runs it. Throws sq::Error; returns the exit code on success paths.
#pragma once

namespace sq::coordinator {

int run_app(int argc, char** argv);

}  // namespace sq::coordinator
