#include "common/check.h"
#include "coordinator/commands.h"

namespace sq::coordinator {

int cmd_tokenize(const std::vector<std::string>& args) {
  SQ_THROW(InputError, "shardquant tokenize: not built yet in this version");
}

}  // namespace sq::coordinator
