// Test support shared by the Docker tests (engine, image puller, janitor); no library
// includes it. They drive the real dockerd with the docker CLI, bounded by timeout(1).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace lichen::docker::test_support {

// The source tree (LICHEN_SOURCE_DIR, else found from this file).
inline std::string SourceDir() {
  const char* env = std::getenv("LICHEN_SOURCE_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
}

struct Shell {
  int code = -1;
  std::string out;
};

// Runs `command` with bash, bounded by timeout(1); stdout and stderr together. The
// command is single-quoted for bash: it must not contain single quotes.
inline Shell Sh(const std::string& command, int seconds = 120) {
  Shell r;
  const std::string full = "timeout " + std::to_string(seconds) + " bash -c '" + command + "' 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The shell commands that tag `source` as `name`, push it to its registry and drop the
// local tag, so that a pull has to fetch it. `authenticated`: log in to the htpasswd
// registry of scripts/services.sh with a throwaway CLI configuration (no credentials
// stay on disk).
inline std::string PushCommand(const std::string& source, const std::string& name,
                               bool authenticated) {
  std::string cmd = "set -e; docker tag " + source + " " + name + "; ";
  if (authenticated) {
    const std::string registry = name.substr(0, name.find('/'));
    cmd +=
        "cfg=$(mktemp -d); trap \"rm -rf $cfg\" EXIT; "
        "echo lichen-secret | docker --config $cfg login -u lichen --password-stdin " +
        registry + " >/dev/null 2>&1; docker --config $cfg push " + name + " >/dev/null; ";
  } else {
    cmd += "docker push " + name + " >/dev/null; ";
  }
  return cmd + "docker rmi " + name + " >/dev/null";
}

}  // namespace lichen::docker::test_support
