// `sqlx::migrate!` embeds migrations/ at compile time, but Cargo does not know it reads that
// directory: without this, a migration added (or landed by a merge) is silently missing from a
// cached build ("no such table").
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
