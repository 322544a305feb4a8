//! The `perfornium` binary: everything lives in the library and in [`cli`], which parses the
//! command line and calls one function per subcommand.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
