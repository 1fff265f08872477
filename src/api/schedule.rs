//! The one cron parser, shared by the `SCHEDULE_INVALID` rule and the
//! controller's `schedule` teardown trigger, so that an expression the
//! webhook admits is exactly one the controller can fire.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::jiff::Timestamp;

/// A standard 5-field cron expression (minute hour day month weekday), in UTC.
#[derive(Clone, Debug)]
pub struct Schedule(Cron);

impl Schedule {
    /// Only what standard cron knows: numbers, `*`, `,`, `-`, `/` and month
    /// or weekday names. Quartz extensions (`L`, `W`, `#`, `?`), seconds,
    /// years and macros (`@daily`) are refused.
    pub fn parse(expr: &str) -> Option<Schedule> {
        if expr.split_whitespace().count() != 5 || !is_standard_cron_syntax(expr) {
            return None;
        }
        CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .ok()
            .map(Schedule)
    }

    /// The first time strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
            after.as_second(),
            after.subsec_nanosecond().max(0) as u32,
        )?;
        let next = self.0.find_next_occurrence(&start, false).ok()?;
        Timestamp::from_second(next.timestamp()).ok()
    }
}

fn is_standard_cron_syntax(expr: &str) -> bool {
    const NAMES: [&str; 19] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN",
        "MON", "TUE", "WED", "THU", "FRI", "SAT",
    ];
    let mut rest = expr.to_ascii_uppercase();
    for name in NAMES {
        rest = rest.replace(name, "");
    }
    rest.chars().all(|c| {
        c.is_ascii_digit() || c.is_ascii_whitespace() || matches!(c, '*' | ',' | '-' | '/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_expressions_parse_and_extensions_do_not() {
        let mut wrong = Vec::new();
        for (expr, standard) in [
            ("0 2 * * *", true),
            ("*/15 9-17 * JAN-MAR mon-fri", true),
            ("0 25 * * *", false),
            ("0 2 * *", false),
            ("0 0 2 * * *", false),
            ("@daily", false),
            ("0 0 L * *", false),
            ("0 0 * * MON#1", false),
            ("0 0 ? * *", false),
        ] {
            if Schedule::parse(expr).is_some() != standard {
                wrong.push(expr);
            }
        }
        assert!(wrong.is_empty(), "misjudged: {wrong:?}");
    }

    #[test]
    fn the_next_time_is_strictly_after() {
        let schedule = Schedule::parse("0 * * * *").unwrap();
        let on_the_hour = Timestamp::from_second(500_000 * 3600).unwrap();
        let next = schedule.next_after(on_the_hour).unwrap();
        assert_eq!(next.as_second() - on_the_hour.as_second(), 3600);
    }
}
