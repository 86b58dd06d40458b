//! The relay binary (`tabmesh-relay`), built in this package for the tests.

fn main() -> std::process::ExitCode {
    tabmesh_relay::main()
}
