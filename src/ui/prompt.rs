//! The command line of the UI (`:`): a line typed as a person would say it, turned into one of the
//! core's commands, checked against the lab before it is sent, with Tab completing names.
//!
//! ```text
//! down wan                         up wan
//! model wan latency=50ms loss=0.01 model wan a-to-b rate=1Mbit queue=20
//! model wan jitter=5ms distribution=normal reorder=true duplicate=0.01 corrupt=0.001
//! model wan burst=0.01,0.3 queue_bytes=64KiB
//! ping laptop server count=5       echo laptop server:7     transfer laptop server:9 bytes=1MiB
//! stop laptop laptop/ping
//! ```

use crate::sim::command::DirectionSpec;
use crate::sim::CommandSpec;
use crate::topology::spec::{ByteSize, GilbertElliottSpec, ImpairSpec, LossModelSpec};
use crate::topology::{Lab, LinkModel, NodeKind, Side};

/// The verbs, for completion and for the help line.
pub const VERBS: [&str; 7] = ["down", "up", "model", "ping", "echo", "transfer", "stop"];

/// Parses a typed line into a command, or says what is wrong with it.
pub fn parse(line: &str) -> Result<CommandSpec, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return Err("type a command: down, up, model, ping, echo, transfer, stop".into());
    };
    let need = |n: usize, usage: &str| if args.len() < n { Err(format!("usage: {usage}")) } else { Ok(()) };
    // `key=value` options after the positional words.
    let options = |from: usize| -> Result<Vec<(&str, &str)>, String> {
        args.iter().skip(from).map(|a| a.split_once('=').ok_or_else(|| format!("`{a}` is not `name=value`"))).collect()
    };
    match verb {
        "down" | "up" => {
            need(1, &format!("{verb} LINK"))?;
            let link = args[0].to_string();
            Ok(if verb == "down" { CommandSpec::LinkDown { link } } else { CommandSpec::LinkUp { link } })
        }
        "model" => {
            need(2, "model LINK [a-to-b|b-to-a] latency=2ms rate=10Mbit loss=0.01 queue=100")?;
            let (direction, from) = match args[1] {
                "a-to-b" => (Some(DirectionSpec::AToB), 2),
                "b-to-a" => (Some(DirectionSpec::BToA), 2),
                _ => (None, 1),
            };
            let mut impair = ImpairSpec::default();
            for (k, v) in options(from)? {
                match k {
                    "latency" => impair.latency = Some(v.to_string()),
                    "rate" => impair.rate = Some(v.to_string()),
                    "loss" => impair.loss = Some(v.parse().map_err(|_| format!("loss `{v}` is not a number"))?),
                    "queue" => impair.queue = Some(v.parse().map_err(|_| format!("queue `{v}` is not a number"))?),
                    "jitter" => impair.jitter = Some(v.to_string()),
                    "distribution" => {
                        impair.distribution = Some(
                            serde_json::from_value(v.into())
                                .map_err(|_| format!("distribution `{v}` is not uniform, normal, pareto or paretonormal"))?,
                        );
                    }
                    "reorder" => impair.reorder = Some(v.parse().map_err(|_| format!("reorder `{v}` is not true or false"))?),
                    "duplicate" => {
                        impair.duplicate = Some(v.parse().map_err(|_| format!("duplicate `{v}` is not a number"))?);
                    }
                    "corrupt" => impair.corrupt = Some(v.parse().map_err(|_| format!("corrupt `{v}` is not a number"))?),
                    "queue_bytes" => {
                        impair.queue_bytes = Some(v.parse().map_or_else(|_| ByteSize::Text(v.into()), ByteSize::Bytes));
                    }
                    "burst" => impair.loss_model = Some(burst(v)?),
                    other => {
                        return Err(format!(
                            "`{other}` is not latency, rate, loss, queue, jitter, distribution, reorder, duplicate, corrupt, queue_bytes or burst"
                        ))
                    }
                }
            }
            Ok(CommandSpec::SetModel { link: args[0].to_string(), direction, impair })
        }
        "ping" | "echo" | "transfer" => {
            need(2, &format!("{verb} HOST TARGET [name=value …]"))?;
            let kind = match verb {
                "ping" => "ping",
                "echo" => "tcp-echo",
                _ => "tcp-transfer",
            };
            let mut app = serde_json::json!({ "kind": kind, "to": args[1] });
            for (k, v) in options(2)? {
                // Numbers as numbers, the rest (durations, sizes) as the lab file writes them.
                app[k] = v.parse::<u64>().map_or_else(|_| serde_json::Value::from(v), serde_json::Value::from);
            }
            if kind == "tcp-transfer" && app.get("bytes").is_none() {
                app["bytes"] = "1MiB".into();
            }
            Ok(CommandSpec::StartApp { node: args[0].to_string(), app })
        }
        "stop" => {
            need(2, "stop HOST APP")?;
            Ok(CommandSpec::StopApp { node: args[0].to_string(), app: args[1].to_string() })
        }
        other => Err(format!("unknown command `{other}`; try {}", VERBS.join(", "))),
    }
}

/// `burst=P,R[,GOOD,BAD]`: Gilbert-Elliott loss, as a lab file's `loss_model`.
fn burst(v: &str) -> Result<LossModelSpec, String> {
    let usage = || format!("burst `{v}` is not P,R or P,R,LOSS_GOOD,LOSS_BAD (such as burst=0.01,0.3)");
    let n: Vec<f64> = v.split(',').map(|x| x.trim().parse().map_err(|_| usage())).collect::<Result<_, _>>()?;
    let (p, r, loss_good, loss_bad) = match n[..] {
        [p, r] => (p, r, None, None),
        [p, r, g, b] => (p, r, Some(g), Some(b)),
        _ => return Err(usage()),
    };
    Ok(LossModelSpec::GilbertElliott(GilbertElliottSpec { p, r, loss_good, loss_bad }))
}

/// Checks a command against the lab as the core will, so that the line says what is wrong before
/// anything is sent. `model` gives a link direction's current model.
pub fn check(cmd: &CommandSpec, lab: &Lab, model: impl Fn(usize, Side) -> LinkModel) -> Result<(), String> {
    cmd.resolve(lab, |l, s| model(l.index(), s)).map(|_| ()).map_err(|e| e.to_string())
}

/// Completes the last word of `line` from the verbs and the lab's names: the longest common
/// beginning of the candidates.
#[must_use]
pub fn complete(line: &str, lab: &Lab) -> String {
    let (head, last) = match line.rfind(' ') {
        Some(i) => (&line[..=i], &line[i + 1..]),
        None => ("", line),
    };
    let candidates: Vec<String> = if head.is_empty() {
        VERBS.iter().map(|v| (*v).to_string()).collect()
    } else {
        let mut names: Vec<String> = lab.links.iter().map(|l| l.name.clone()).collect();
        names.extend(lab.nodes.iter().map(|n| n.name.clone()));
        for n in &lab.nodes {
            if let NodeKind::Host(h) = &n.kind {
                names.extend(h.apps.iter().map(|a| a.label.clone()));
            }
        }
        names.extend(
            [
                "a-to-b",
                "b-to-a",
                "latency=",
                "rate=",
                "loss=",
                "queue=",
                "jitter=",
                "distribution=",
                "reorder=",
                "duplicate=",
                "corrupt=",
                "queue_bytes=",
                "burst=",
                "count=",
                "interval=",
                "bytes=",
            ]
            .map(String::from),
        );
        names
    };
    let matching: Vec<&String> = candidates.iter().filter(|c| c.starts_with(last)).collect();
    let Some(first) = matching.first() else { return line.to_string() };
    let mut common = first.len();
    for m in &matching[1..] {
        common = common.min(first.chars().zip(m.chars()).take_while(|(a, b)| a == b).count());
    }
    let done = matching.len() == 1 && !first.ends_with('=');
    format!("{head}{}{}", &first[..common], if done { " " } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/labs/two-site.json")).expect("lab");
        crate::topology::load_str(&text, "two-site.json").expect("valid")
    }

    #[test]
    fn lines_become_commands() {
        assert!(matches!(parse("down wan"), Ok(CommandSpec::LinkDown { link }) if link == "wan"));
        let Ok(CommandSpec::SetModel { link, direction, impair }) = parse("model wan b-to-a latency=50ms loss=0.1")
        else {
            panic!()
        };
        assert_eq!(
            (link.as_str(), direction, impair.latency.as_deref(), impair.loss),
            ("wan", Some(DirectionSpec::BToA), Some("50ms"), Some(0.1))
        );
        let Ok(CommandSpec::StartApp { node, app }) = parse("ping laptop pc count=3") else { panic!() };
        assert_eq!(
            (node.as_str(), &app["kind"], &app["to"], &app["count"]),
            ("laptop", &"ping".into(), &"pc".into(), &3.into())
        );
        assert!(parse("").is_err());
        assert!(parse("fly wan").unwrap_err().contains("unknown command"));
        assert!(parse("model wan speed=9").unwrap_err().contains("not latency"));
        let Ok(CommandSpec::SetModel { impair, .. }) =
            parse("model wan jitter=2ms distribution=normal reorder=true duplicate=0.1 corrupt=0.2 queue_bytes=64KiB burst=0.01,0.3")
        else {
            panic!()
        };
        assert_eq!(impair.jitter.as_deref(), Some("2ms"));
        assert_eq!(impair.distribution, Some(crate::topology::Distribution::Normal));
        assert_eq!((impair.reorder, impair.duplicate, impair.corrupt), (Some(true), Some(0.1), Some(0.2)));
        assert_eq!(impair.queue_bytes, Some(ByteSize::Text("64KiB".into())));
        assert!(matches!(impair.loss_model, Some(LossModelSpec::GilbertElliott(g)) if g.p == 0.01 && g.r == 0.3));
        assert!(parse("model wan distribution=gauss").unwrap_err().contains("not uniform"));
        assert!(parse("model wan burst=0.1").unwrap_err().contains("P,R"));
        assert!(parse("down").unwrap_err().contains("usage"));
    }

    #[test]
    fn commands_are_checked_against_the_lab() {
        let lab = lab();
        let model = |_, _| LinkModel::default();
        assert_eq!(check(&parse("down wan").unwrap(), &lab, model), Ok(()));
        assert!(check(&parse("down lan").unwrap(), &lab, model).unwrap_err().contains("no link `lan`"));
        assert_eq!(check(&parse("ping laptop pc").unwrap(), &lab, model), Ok(()));
        assert!(check(&parse("ping hq-sw pc").unwrap(), &lab, model).unwrap_err().contains("not a host"));
        assert!(check(&parse("model wan loss=3").unwrap(), &lab, model).unwrap_err().contains("probability"));
        let err = check(&parse("model wan corrupt=2").unwrap(), &lab, model).unwrap_err();
        assert!(err.contains("corrupt") && err.contains("probability"), "{err}");
        assert!(check(&parse("model wan jitter=1h").unwrap(), &lab, model).unwrap_err().contains("jitter"));
    }

    #[test]
    fn tab_completes_verbs_and_names() {
        let lab = lab();
        assert_eq!(complete("tra", &lab), "transfer ");
        // `laptop` and its apps and link: as far as they agree.
        assert_eq!(complete("ping lap", &lab), "ping laptop");
        assert_eq!(complete("down w", &lab), "down wan ");
        assert_eq!(complete("model wan lat", &lab), "model wan latency=");
        assert_eq!(complete("ping laptop f", &lab), "ping laptop fileserver");
        assert_eq!(complete("zz", &lab), "zz");
    }
}
