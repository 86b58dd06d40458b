//! `tabmesh-relay`: see the library's documentation (`tabmesh_relay`).

fn main() -> std::process::ExitCode {
    tabmesh_relay::main()
}
