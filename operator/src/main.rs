fn main() {
    ecs_operator::cli::main()
}
