//! The `mosaic` command-line tool.

fn main() {
    eprintln!("mosaic: no commands yet");
    std::process::exit(2);
}
