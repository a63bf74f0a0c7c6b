//! The operator binary, built in this package so end-to-end tests can run it as a process.
fn main() {
    ecs_operator::cli::main()
}
