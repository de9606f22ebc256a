// Stand-in until the quantization pipeline lands: that work deletes this file and provides
// run_quantize() in its own translation unit. Failing loudly (exit 2) beats a silent no-op.
#include "common/check.h"
#include "coordinator/quantize.h"

namespace sq::coordinator {

int run_quantize(const Options&, const Plan&) {
  SQ_THROW(InputError, "the quantization step is not available in this build yet; use --dry-run");
}

}  // namespace sq::coordinator
