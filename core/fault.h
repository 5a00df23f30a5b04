// Fault injection for the crash tests: a process can be told to kill itself at a chosen atomic write,
// after the temporary file is complete and before it is renamed into place -- the moment a kill leaves a
// temporary behind. Off unless the environment variable ADVGRAD_TEST_KILL_AT_WRITE=N is set (N >= 1: the
// N-th atomic write of the process); tests/test_kill_resume.cpp uses it.
#pragma once

namespace advgrad {

// Called by every atomic writer just before its rename. Raises SIGKILL on the chosen write; otherwise does
// nothing.
void fault_point_before_rename();

}  // namespace advgrad
