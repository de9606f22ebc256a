#include "common/check.h"
#include "coordinator/commands.h"

namespace sq::coordinator {

int cmd_synth(const std::vector<std::string>& args) {
  SQ_THROW(InputError, "shardquant synth: not built yet in this version");
}

}  // namespace sq::coordinator
