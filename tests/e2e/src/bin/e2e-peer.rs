//! The native peer binary (`tabmesh-peer`), built in this package for the tests.

fn main() -> std::process::ExitCode {
    tabmesh_peer::main()
}
