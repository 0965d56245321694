//! Plots for the benchmark programs.

/// Registers DejaVu Sans as plotters' "sans-serif". It is built into the binary (DejaVu's licence
/// allows it; Debian's fonts-dejavu-core, installed by scripts/setup.sh, provides it at build
/// time), so plots work on machines without fonts.
pub fn register_font() -> anyhow::Result<()> {
    const FONT: &[u8] = include_bytes!("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the built-in DejaVu Sans is not a usable font"))
}
