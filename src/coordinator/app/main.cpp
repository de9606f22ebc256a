// The shardquant executable: every exception becomes an exit code here and only here.
#include <csignal>
#include <exception>
#include <iostream>

#include "common/crash_report.h"
#include "common/errors.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "coordinator/app/app.h"

int main(int argc, char** argv) {
  sq::install_crash_report("shardquant");
  // A file-size limit (ulimit -f, RLIMIT_FSIZE) then fails the write with EFBIG — an error
  // naming the file, exit 3, output left as <out>.partial — instead of killing the process with
  // SIGXFSZ and no message.
  std::signal(SIGXFSZ, SIG_IGN);
  int code = 0;
  try {
    code = sq::coordinator::run_app(argc, argv);
  } catch (const sq::Error& e) {
    sq::log()->error("{}: {}", e.kind(), e.what());
    sq::flush_logs();
    code = sq::exit_code_for(e);
  } catch (const std::exception& e) {
    sq::log()->error("internal error: {}", e.what());
    sq::flush_logs();
    code = sq::exit_code_for(e);
  }
  sq::write_exit_status(code);
  return code;
}
