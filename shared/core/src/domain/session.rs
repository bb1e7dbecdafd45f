//! The call's media session, as its provider reports it: what happened (facts), and what that
//! means (the session record). The record is a function of the *set* of facts, so events that
//! arrive late, twice or out of order give the same record as the same events in order.

use std::collections::{BTreeMap, BTreeSet};

/// One thing the provider reported, in provider-neutral terms. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MediaEvent {
    /// A session began. 100ms names it (`session_id`); Agora's channel sessions have no id,
    /// so theirs is `None` and sessions are told apart by time.
    Opened { session: Option<String>, at: u64 },
    /// A session ended (everyone left, or the room was ended).
    Closed { session: Option<String>, at: u64 },
    /// Someone joined. `peer`: 100ms's `peer_id` (one per join), or Agora's uid. `seq`:
    /// Agora's `clientSeq` (the order of one user's events), 0 for 100ms.
    Joined {
        session: Option<String>,
        peer: String,
        at: u64,
        seq: u64,
    },
    /// Someone left.
    Left {
        session: Option<String>,
        peer: String,
        at: u64,
        seq: u64,
    },
}

impl MediaEvent {
    pub fn at(&self) -> u64 {
        match self {
            MediaEvent::Opened { at, .. }
            | MediaEvent::Closed { at, .. }
            | MediaEvent::Joined { at, .. }
            | MediaEvent::Left { at, .. } => *at,
        }
    }

    fn session(&self) -> Option<&str> {
        match self {
            MediaEvent::Opened { session, .. }
            | MediaEvent::Closed { session, .. }
            | MediaEvent::Joined { session, .. }
            | MediaEvent::Left { session, .. } => session.as_deref(),
        }
    }

    /// Whether this is a session's start or end (as opposed to a participant's).
    pub fn is_session_event(&self) -> bool {
        matches!(self, MediaEvent::Opened { .. } | MediaEvent::Closed { .. })
    }
}

/// An event with the provider's id for it (100ms's event `id`, Agora's `noticeId`): the same
/// id twice is the same event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fact {
    pub id: String,
    pub event: MediaEvent,
}

/// The session record of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRecord {
    /// A session is running now.
    pub live: bool,
    /// Start of the current or last session (Unix ms).
    pub started_at: Option<u64>,
    /// End of the last session, when it is over (Unix ms).
    pub ended_at: Option<u64>,
    /// People in the current session.
    pub participants: u32,
    /// The most people in the call at once, over all its sessions.
    pub max_participants: u32,
    /// How many sessions there were.
    pub sessions: u32,
    /// The current or last session's key.
    pub key: Option<String>,
    /// That session has the provider's name for it (100ms), not one made of its times (Agora).
    pub named: bool,
}

impl SessionRecord {
    /// The transition the channel is to be told of now, named so that it is told once however
    /// its events arrive: `started:<session>` while a session whose start is known runs, and
    /// `ended:<session>` (100ms) or `ended:e<end>` (Agora, whose sessions are known by their
    /// times) once it closed. A session whose start is unknown while it runs is not told yet;
    /// one whose start arrives after its end is told only that it ended.
    pub fn transition(&self) -> Option<String> {
        let key = self.key.as_deref()?;
        if self.live {
            self.started_at.map(|_| format!("started:{key}"))
        } else if self.named {
            Some(format!("ended:{key}"))
        } else {
            self.ended_at.map(|end| format!("ended:e{end}"))
        }
    }
}

/// One session as the facts describe it.
#[derive(Debug, Default)]
struct Span {
    named: bool,
    start: Option<u64>,
    end: Option<u64>,
    /// Per peer, its events ordered by (seq, time, joined-before-left).
    peers: BTreeMap<String, BTreeSet<(u64, u64, bool)>>,
}

impl SessionRecord {
    /// The record that `facts` (in any order, duplicates allowed) describe.
    pub fn of<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> SessionRecord {
        // The set of distinct events, in one canonical order.
        let events: BTreeSet<&MediaEvent> = facts.into_iter().map(|f| &f.event).collect();
        let spans = spans(events.iter().copied());
        let mut record = SessionRecord {
            sessions: spans.len() as u32,
            ..SessionRecord::default()
        };
        // Intervals of every participant, for the most at once.
        let mut edges: Vec<(u64, i32)> = Vec::new();
        for span in spans.values() {
            for events in span.peers.values() {
                let mut joined: Option<u64> = None;
                for &(_, at, left) in events {
                    match (left, joined) {
                        (false, None) => joined = Some(at),
                        (true, Some(from)) => {
                            edges.push((from, 1));
                            edges.push((at.max(from), -1));
                            joined = None;
                        }
                        _ => {}
                    }
                }
                if let Some(from) = joined {
                    edges.push((from, 1));
                    if let Some(end) = span.end {
                        edges.push((end.max(from), -1));
                    }
                }
            }
        }
        // Leaves before joins at the same millisecond: no one counted twice.
        edges.sort_unstable();
        let mut now = 0i32;
        for (_, d) in edges {
            now += d;
            record.max_participants = record.max_participants.max(now.max(0) as u32);
        }
        if let Some((key, last)) = spans
            .iter()
            .max_by_key(|(key, s)| (s.start.or(s.end).unwrap_or(0), key.as_str()))
        {
            record.key = Some(key.clone());
            record.named = last.named;
            record.started_at = last.start;
            record.ended_at = last.end;
            record.live = last.end.is_none();
            if record.live {
                record.participants = last
                    .peers
                    .values()
                    .filter(|events| events.iter().next_back().is_some_and(|e| !e.2))
                    .count() as u32;
            }
        }
        record
    }
}

/// The sessions the events describe, by key. 100ms names its sessions; Agora's are the spans
/// between a channel's creation and destruction, and its participants' events fall into the
/// span that holds their time.
fn spans<'a>(events: impl Iterator<Item = &'a MediaEvent>) -> BTreeMap<String, Span> {
    let events: Vec<&MediaEvent> = events.collect();
    let mut spans: BTreeMap<String, Span> = BTreeMap::new();
    // Unnamed (Agora) session starts and ends, in time order.
    let mut opens: Vec<u64> = Vec::new();
    let mut closes: Vec<u64> = Vec::new();
    for e in &events {
        match (e, e.session()) {
            (MediaEvent::Opened { at, .. }, Some(s)) => {
                let span = spans.entry(s.to_string()).or_default();
                span.named = true;
                span.start = Some(span.start.map_or(*at, |x| x.min(*at)));
            }
            (MediaEvent::Closed { at, .. }, Some(s)) => {
                let span = spans.entry(s.to_string()).or_default();
                span.named = true;
                span.end = Some(span.end.map_or(*at, |x| x.max(*at)));
            }
            (MediaEvent::Opened { at, .. }, None) => opens.push(*at),
            (MediaEvent::Closed { at, .. }, None) => closes.push(*at),
            _ => {}
        }
    }
    opens.sort_unstable();
    closes.sort_unstable();
    // Each unnamed session runs from an open to the first close after it (and before the next
    // open); a close with no open before it ends a session whose start is unknown.
    let mut unnamed: Vec<(Option<u64>, Option<u64>)> = Vec::new();
    let mut ci = 0;
    for (i, &open) in opens.iter().enumerate() {
        let next_open = opens.get(i + 1).copied().unwrap_or(u64::MAX);
        while ci < closes.len() && closes[ci] < open {
            unnamed.push((None, Some(closes[ci])));
            ci += 1;
        }
        let end = (ci < closes.len() && closes[ci] <= next_open).then(|| {
            ci += 1;
            closes[ci - 1]
        });
        unnamed.push((Some(open), end));
    }
    for &close in &closes[ci..] {
        unnamed.push((None, Some(close)));
    }
    for (start, end) in &unnamed {
        let key = format!("t{}", start.or(*end).unwrap_or(0));
        let span = spans.entry(key).or_default();
        span.start = *start;
        span.end = *end;
    }
    for e in &events {
        let (peer, at, seq, left) = match e {
            MediaEvent::Joined { peer, at, seq, .. } => (peer, *at, *seq, false),
            MediaEvent::Left { peer, at, seq, .. } => (peer, *at, *seq, true),
            _ => continue,
        };
        let (key, named) = match e.session() {
            Some(s) => (s.to_string(), true),
            None => {
                // The unnamed session holding `at`: the last one started at or before it.
                let holder = unnamed
                    .iter()
                    .rfind(|(start, end)| {
                        start.is_none_or(|s| s <= at) && end.is_none_or(|e| at <= e)
                    })
                    .or_else(|| {
                        unnamed
                            .iter()
                            .rfind(|(start, _)| start.is_none_or(|s| s <= at))
                    });
                let key = match holder {
                    Some((start, end)) => format!("t{}", start.or(*end).unwrap_or(0)),
                    // Before any known start: a session whose start is not known yet.
                    None => "t0".to_string(),
                };
                (key, false)
            }
        };
        let span = spans.entry(key).or_default();
        span.named |= named;
        span.peers
            .entry(peer.clone())
            .or_default()
            .insert((seq, at, left));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &str, event: MediaEvent) -> Fact {
        Fact {
            id: id.into(),
            event,
        }
    }

    fn hms(s: &str) -> Option<String> {
        Some(s.into())
    }

    /// A 100ms call: a session with three joins (two at once), a second session.
    fn hms_call() -> Vec<Fact> {
        let s1 = hms("s1");
        let s2 = hms("s2");
        let j = |id: &str, s: &Option<String>, peer: &str, at| {
            fact(
                id,
                MediaEvent::Joined {
                    session: s.clone(),
                    peer: peer.into(),
                    at,
                    seq: 0,
                },
            )
        };
        let l = |id: &str, s: &Option<String>, peer: &str, at| {
            fact(
                id,
                MediaEvent::Left {
                    session: s.clone(),
                    peer: peer.into(),
                    at,
                    seq: 0,
                },
            )
        };
        vec![
            fact(
                "o1",
                MediaEvent::Opened {
                    session: s1.clone(),
                    at: 1000,
                },
            ),
            j("j1", &s1, "p1", 1000),
            j("j2", &s1, "p2", 2000),
            l("l1", &s1, "p1", 3000),
            j("j3", &s1, "p3", 3000),
            l("l2", &s1, "p2", 4000),
            l("l3", &s1, "p3", 5000),
            fact(
                "c1",
                MediaEvent::Closed {
                    session: s1,
                    at: 5000,
                },
            ),
            fact(
                "o2",
                MediaEvent::Opened {
                    session: s2.clone(),
                    at: 9000,
                },
            ),
            j("j4", &s2, "p4", 9000),
        ]
    }

    #[test]
    fn a_100ms_call_in_order() {
        let r = SessionRecord::of(&hms_call());
        assert_eq!(
            r,
            SessionRecord {
                live: true,
                started_at: Some(9000),
                ended_at: None,
                participants: 1,
                max_participants: 2,
                sessions: 2,
                key: Some("s2".into()),
                named: true,
            }
        );
        let first: Vec<Fact> = hms_call().into_iter().take(8).collect();
        let r = SessionRecord::of(&first);
        assert!(!r.live);
        assert_eq!(
            (r.started_at, r.ended_at, r.participants),
            (Some(1000), Some(5000), 0)
        );
        assert_eq!(SessionRecord::of(&[]), SessionRecord::default());
    }

    /// An Agora channel: created, two users (one drops and rejoins), destroyed, created again.
    fn agora_call() -> Vec<Fact> {
        let j = |id: &str, uid: &str, at, seq| {
            fact(
                id,
                MediaEvent::Joined {
                    session: None,
                    peer: uid.into(),
                    at,
                    seq,
                },
            )
        };
        let l = |id: &str, uid: &str, at, seq| {
            fact(
                id,
                MediaEvent::Left {
                    session: None,
                    peer: uid.into(),
                    at,
                    seq,
                },
            )
        };
        vec![
            fact(
                "n1",
                MediaEvent::Opened {
                    session: None,
                    at: 10_000,
                },
            ),
            j("n2", "7", 10_000, 1),
            j("n3", "8", 11_000, 1),
            l("n4", "7", 12_000, 2),
            j("n5", "7", 12_000, 3),
            l("n6", "7", 15_000, 4),
            l("n7", "8", 16_000, 2),
            fact(
                "n8",
                MediaEvent::Closed {
                    session: None,
                    at: 16_000,
                },
            ),
            fact(
                "n9",
                MediaEvent::Opened {
                    session: None,
                    at: 20_000,
                },
            ),
            j("n10", "8", 20_000, 3),
        ]
    }

    #[test]
    fn an_agora_call_in_order() {
        let r = SessionRecord::of(&agora_call());
        assert_eq!(
            (
                r.live,
                r.started_at,
                r.ended_at,
                r.participants,
                r.max_participants,
                r.sessions
            ),
            (true, Some(20_000), None, 1, 2, 2)
        );
        let first: Vec<Fact> = agora_call().into_iter().take(8).collect();
        let r = SessionRecord::of(&first);
        assert_eq!(
            (r.live, r.ended_at, r.participants, r.sessions),
            (false, Some(16_000), 0, 1)
        );
    }

    #[test]
    fn any_permutation_with_duplicates_gives_the_same_record() {
        for (name, facts) in [("100ms", hms_call()), ("agora", agora_call())] {
            for n in 1..=facts.len() {
                let prefix: Vec<Fact> = facts[..n].to_vec();
                let expected = SessionRecord::of(&prefix);
                let mut rng = fastrand::Rng::with_seed(n as u64);
                for _ in 0..200 {
                    let mut shuffled = prefix.clone();
                    // Duplicates, as retries and replays send them.
                    for _ in 0..rng.usize(0..4) {
                        let again = shuffled[rng.usize(0..shuffled.len())].clone();
                        shuffled.push(again);
                    }
                    rng.shuffle(&mut shuffled);
                    assert_eq!(SessionRecord::of(&shuffled), expected, "{name}, {n} facts");
                }
            }
        }
    }

    #[test]
    fn each_transition_has_one_name_however_the_events_arrive() {
        // Agora: the join before the channel's creation tells nothing; the session is told
        // started under the name it keeps, then ended under its end.
        let all = agora_call();
        let first: Vec<Fact> = all[..8].to_vec();
        let join_only = vec![all[1].clone()];
        assert_eq!(SessionRecord::of(&join_only).transition(), None);
        let live = SessionRecord::of(&first[..2]);
        assert_eq!(live.transition().as_deref(), Some("started:t10000"));
        let ended = SessionRecord::of(&first);
        assert_eq!(ended.transition().as_deref(), Some("ended:e16000"));
        // The destruction before the creation: ended, under the same name.
        let late_open = vec![first[7].clone(), first[6].clone()];
        assert_eq!(
            SessionRecord::of(&late_open).transition().as_deref(),
            Some("ended:e16000")
        );
        // 100ms: named by its session id, whatever its times.
        let hms = hms_call();
        assert_eq!(
            SessionRecord::of(&hms[..2]).transition().as_deref(),
            Some("started:s1")
        );
        assert_eq!(
            SessionRecord::of(&hms[..8]).transition().as_deref(),
            Some("ended:s1")
        );
    }

    #[test]
    fn a_close_without_its_open_ends_a_session_of_unknown_start() {
        let facts = vec![
            fact(
                "c",
                MediaEvent::Closed {
                    session: None,
                    at: 5000,
                },
            ),
            fact(
                "j",
                MediaEvent::Joined {
                    session: None,
                    peer: "1".into(),
                    at: 4000,
                    seq: 1,
                },
            ),
        ];
        let r = SessionRecord::of(&facts);
        assert_eq!(
            (r.live, r.started_at, r.ended_at, r.sessions),
            (false, None, Some(5000), 1)
        );
        assert_eq!(r.max_participants, 1);
    }
}
