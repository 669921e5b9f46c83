// Link the extension with `-z nodelete`: PHP must never dlclose() the .so while the flush thread still runs
// (field notes, trap 5).
fn main() {
    if std::env::var_os("CARGO_FEATURE_PHP").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
