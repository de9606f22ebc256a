#include "coordinator/app.h"

#include <iostream>
#include <string>

#include "common/check.h"
#include "common/log.h"

namespace sq::coordinator {

// Placeholder dispatcher; the options/plan work (issue 2) replaces this.
int run_app(int argc, char** argv) {
  sq::init_logging();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::cout << "shardquant " << SQ_VERSION << "\n";
      return 0;
    }
  }
  SQ_THROW(InputError, "not implemented yet");
}

}  // namespace sq::coordinator
