//! `tabmesh-peer`: see the library's documentation (`tabmesh_peer`).

fn main() -> std::process::ExitCode {
    tabmesh_peer::main()
}
