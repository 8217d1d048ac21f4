use crate::{Error, Report, Result};

pub fn render(report: &Report) -> Result<String> {
    let mut out = serde_json::to_string_pretty(report).map_err(|e| Error::Render(e.to_string()))?;
    out.push('\n');
    Ok(out)
}
