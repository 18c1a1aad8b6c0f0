//! Histories of operations.

use std::collections::HashMap;

/// Time of an event. Either a timestamp or the event's position in the history; only the order
/// matters. An operation still open at the end of the history returns at [`Time::MAX`].
pub type Time = u64;

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (process) that issued it. A client has at most one operation open at a time.
    pub client: u64,
    /// When it was invoked.
    pub call: Time,
    /// When it returned; [`Time::MAX`] for an operation still open at the end of the history.
    /// Invariant: `call < ret`.
    pub ret: Time,
    pub input: I,
    /// Its result, or `None` when the result is unknown (any result is accepted).
    pub output: Option<O>,
}

/// A history: operations in no particular order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<I, O> {
    pub ops: Vec<Operation<I, O>>,
}

impl<I, O> History<I, O> {
    pub fn new(ops: Vec<Operation<I, O>>) -> Self {
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// How an invoked operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion<O> {
    /// It returned this result.
    Ok(O),
    /// It returned, but its result is unknown (e.g. a read that timed out).
    Unknown,
    /// It may or may not take effect, at any time until the end of the history (Jepsen's `:info`).
    Indefinite,
    /// It did not take effect: it is dropped from the history.
    Failed,
}

/// Builds a [`History`] from a stream of invoke and complete events, as a log records them.
/// Time is the position of the event in the stream.
#[derive(Debug)]
pub struct HistoryBuilder<I, O> {
    ops: Vec<Option<Operation<I, O>>>,
    open: HashMap<u64, usize>,
    now: Time,
}

impl<I, O> Default for HistoryBuilder<I, O> {
    fn default() -> Self {
        HistoryBuilder {
            ops: Vec::new(),
            open: HashMap::new(),
            now: 0,
        }
    }
}

/// An event that does not fit the history so far.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("client {0} invokes an operation while its previous one is still open")]
    AlreadyOpen(u64),
    #[error("client {0} completes an operation it never invoked")]
    NotOpen(u64),
}

impl<I, O> HistoryBuilder<I, O> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `client` invokes `input`.
    pub fn invoke(&mut self, client: u64, input: I) -> Result<(), EventError> {
        if self.open.contains_key(&client) {
            return Err(EventError::AlreadyOpen(client));
        }
        self.now += 1;
        self.open.insert(client, self.ops.len());
        self.ops.push(Some(Operation {
            client,
            call: self.now,
            ret: Time::MAX,
            input,
            output: None,
        }));
        Ok(())
    }

    /// The input of `client`'s open operation.
    pub fn open_input(&self, client: u64) -> Option<&I> {
        let i = *self.open.get(&client)?;
        self.ops[i].as_ref().map(|op| &op.input)
    }

    /// `client`'s open operation ends as `completion` says.
    pub fn complete(&mut self, client: u64, completion: Completion<O>) -> Result<(), EventError> {
        let i = self
            .open
            .remove(&client)
            .ok_or(EventError::NotOpen(client))?;
        self.now += 1;
        match completion {
            Completion::Ok(output) => {
                let op = self.ops[i].as_mut().expect("open operation exists");
                op.ret = self.now;
                op.output = Some(output);
            }
            Completion::Unknown => {
                self.ops[i].as_mut().expect("open operation exists").ret = self.now;
            }
            Completion::Indefinite => {} // stays open: returns at Time::MAX, result unknown
            Completion::Failed => self.ops[i] = None,
        }
        Ok(())
    }

    /// The history; operations still open stay open to its end with unknown results.
    pub fn finish(self) -> History<I, O> {
        History::new(self.ops.into_iter().flatten().collect())
    }
}
