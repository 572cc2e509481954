// `nucleus`: runs the daemon in the foreground until SIGTERM or SIGINT.
#include "cli/daemon.h"

#ifdef LICHEN_HAVE_NUCLEUS
#include "nucleus/nucleus.h"
#endif

namespace lichen::cli {

void AddNucleusCommand(CLI::App& app, Context& ctx) {
#ifdef LICHEN_HAVE_NUCLEUS
  auto config = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "nucleus", "Run the nucleus (the runtime daemon) in the foreground until SIGTERM/SIGINT");
  cmd->add_option("--config", *config, "runtime configuration file (YAML or JSON)")
      ->check(CLI::ExistingFile);
  AddRootOption(*cmd, ctx);
  cmd->callback([&ctx, config] {
    nucleus::NucleusOptions options;
    options.root = ResolveRoot(ctx);
    options.config_file = *config;
    ctx.exit_code.value = nucleus::RunNucleus(options);
  });
#else
  (void)app;  // built without the nucleus library: no daemon verb
  (void)ctx;
#endif
}

}  // namespace lichen::cli
