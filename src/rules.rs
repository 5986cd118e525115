//! `vigil rules check`: validates rule files and reports every error with file, line and
//! column.

use anyhow::bail;
use vigil_detectors::rules;

use crate::cli::{RulesArgs, RulesWhat};

/// Runs the rules subcommand.
pub fn run(args: RulesArgs) -> anyhow::Result<()> {
    match args.what {
        RulesWhat::Check { files } => {
            let mut failed = 0;
            for path in &files {
                match rules::load(path) {
                    Ok(file) => {
                        let count = |f: fn(&rules::Group) -> usize| -> usize {
                            file.groups.iter().map(f).sum()
                        };
                        println!(
                            "{}: ok ({} groups, {} rules, {} SLOs)",
                            path.display(),
                            file.groups.len(),
                            count(|g| g.rules.len()),
                            count(|g| g.slos.len())
                        );
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} rule files have errors", files.len());
            }
            Ok(())
        }
    }
}
