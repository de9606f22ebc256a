// The shardquant executable: every exception becomes an exit code here and only here.
#include <exception>
#include <iostream>

#include "common/crash_report.h"
#include "common/errors.h"
#include "common/log.h"
#include "coordinator/app.h"

int main(int argc, char** argv) {
  sq::install_crash_report("shardquant");
  try {
    return sq::coordinator::run_app(argc, argv);
  } catch (const sq::Error& e) {
    sq::log()->error("{}: {}", e.kind(), e.what());
    sq::flush_logs();
    return sq::exit_code_for(e);
  } catch (const std::exception& e) {
    sq::log()->error("internal error: {}", e.what());
    sq::flush_logs();
    return sq::exit_code_for(e);
  }
}
