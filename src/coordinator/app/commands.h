// Subcommands other than the default `quantize`. Each is implemented in its own cmd_*.cpp and
// receives the arguments after the subcommand name. They throw sq::Error on failure and return
// the exit code otherwise.
#pragma once

#include <string>
#include <vector>

namespace sq::coordinator {

int cmd_tokenize(const std::vector<std::string>& args);  // cmd_tokenize.cpp (tokenizer owner)
int cmd_eval(const std::vector<std::string>& args);      // cmd_eval.cpp (forward-pass owner)
int cmd_synth(const std::vector<std::string>& args);     // cmd_synth.cpp (GPU/bench owner)

}  // namespace sq::coordinator
