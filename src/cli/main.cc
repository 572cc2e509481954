// lichen: a Greengrass-compatible edge runtime. Entry point of the command line (also
// installed as `greengrass-cli`; see cli.cc).
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) { return lichen::cli::RunCli(argc, argv, std::cout, std::cerr); }
