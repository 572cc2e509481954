// The daemon: `lichen nucleus --root DIR [--config FILE]`. The composition root that
// reads the runtime configuration, opens the state, wires the subsystems and runs the
// event loop until SIGTERM or SIGINT.
#pragma once
#include <string>

namespace lichen::nucleus {

struct NucleusOptions {
  std::string root = "/greengrass/v2";
  std::string config_file;  // runtime configuration (YAML or JSON); empty = none
};

// Runs until stopped; returns the process exit code (0 after a clean stop).
int RunNucleus(const NucleusOptions& options);

// The cgroup v2 folder the nucleus with this root puts component cgroups in; empty
// when there is no writable cgroup2 hierarchy. (Tests clean it up after a kill -9.)
std::string CgroupBaseFor(const std::string& root);

}  // namespace lichen::nucleus
