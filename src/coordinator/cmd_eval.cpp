#include "common/check.h"
#include "coordinator/commands.h"

namespace sq::coordinator {

int cmd_eval(const std::vector<std::string>& args) {
  SQ_THROW(InputError, "shardquant eval: not built yet in this version");
}

}  // namespace sq::coordinator
