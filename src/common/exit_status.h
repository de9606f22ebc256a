// The process's exit status as a file, for launchers that cannot report it themselves.
//
// Slurm's srun exits 0 when a step fails to launch ("task 0 launch failed: Unspecified error",
// e.g. a requeued job restarting while the previous step's PMIx socket is still bound), so a
// batch script cannot tell "quantized" from "never ran" by srun's exit code. When
// SHARDQUANT_STATUS_FILE is set, the launch's rank 0 (PMIX_RANK, OMPI_COMM_WORLD_RANK, PMI_RANK
// or SLURM_PROCID; a process with none of them counts as rank 0) writes its exit code there as
// one decimal line, atomically (<file>.tmp, then rename), just before it exits normally. A crash
// (a fatal signal) writes nothing; the launcher then sees the signal in its own exit code.
#pragma once

namespace sq {

// Writes `code` to $SHARDQUANT_STATUS_FILE when set and this process is the launch's rank 0.
// Never throws; a failed write is reported on stderr and otherwise ignored (the exit code is
// still returned to the launcher).
void write_exit_status(int code) noexcept;

}  // namespace sq
