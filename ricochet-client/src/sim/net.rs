//! The simulated network: wires between two connections, each a byte
//! stream per direction (in order, as TCP over Tor is), delivered in chunks
//! of any size whenever the simulation picks them. A wire can be cut (each
//! direction then delivers a random prefix of what is in flight, then a
//! reset), or hung up by one end (the other reads what is left, then the
//! end).

use std::collections::{BTreeSet, VecDeque};

use rand::RngExt as _;
use rand::rngs::StdRng;

use crate::core::io::ConnId;

/// One end of a wire: the wire's number and the side (0: the dialler, 1:
/// the listener).
pub(crate) type WireEnd = (usize, usize);

/// What arrives at an end.
#[derive(Debug)]
pub(crate) enum Arrival {
    Bytes(Vec<u8>),
    /// The stream ended: the peer hung up, or the wire was cut (`reset`).
    End {
        reset: bool,
    },
}

#[derive(Debug)]
struct Wire {
    /// The node and connection at each end.
    owners: [(usize, ConnId); 2],
    /// Bytes on their way to each end.
    toward: [VecDeque<u8>; 2],
    /// The end hung up: the other reads what is left, then the end.
    hung_up: [bool; 2],
    /// The end is gone: it reads nothing more.
    gone: [bool; 2],
    /// Cut: each end reads what is left toward it, then a reset.
    cut: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Net {
    wires: Vec<Wire>,
    /// The wires with an end still there.
    active: BTreeSet<usize>,
}

impl Net {
    /// A new wire between the dialler `a` and the listener `b`.
    pub(crate) fn connect(&mut self, a: (usize, ConnId), b: (usize, ConnId)) -> (WireEnd, WireEnd) {
        let wire = self.wires.len();
        self.wires.push(Wire {
            owners: [a, b],
            toward: [VecDeque::new(), VecDeque::new()],
            hung_up: [false; 2],
            gone: [false; 2],
            cut: false,
        });
        self.active.insert(wire);
        ((wire, 0), (wire, 1))
    }

    pub(crate) fn owner(&self, (wire, side): WireEnd) -> (usize, ConnId) {
        self.wires[wire].owners[side]
    }

    /// `end` writes `bytes`.
    pub(crate) fn send(&mut self, (wire, side): WireEnd, bytes: &[u8]) {
        let w = &mut self.wires[wire];
        if w.cut || w.gone[1 - side] {
            return;
        }
        w.toward[1 - side].extend(bytes);
    }

    /// Bytes written by `end` and not yet read by the other.
    pub(crate) fn queued_from(&self, (wire, side): WireEnd) -> usize {
        self.wires[wire].toward[1 - side].len()
    }

    /// The ends that have something to read.
    pub(crate) fn deliverable(&self) -> Vec<WireEnd> {
        let mut ends = Vec::new();
        for &index in &self.active {
            let w = &self.wires[index];
            for side in 0..2 {
                if w.gone[side] {
                    continue;
                }
                if !w.toward[side].is_empty() || w.cut || w.hung_up[1 - side] {
                    ends.push((index, side));
                }
            }
        }
        ends
    }

    /// What `end` reads now: a chunk of what is on its way, or the end.
    pub(crate) fn take(&mut self, (wire, side): WireEnd, rng: &mut StdRng) -> Option<Arrival> {
        let w = &mut self.wires[wire];
        if w.gone[side] {
            return None;
        }
        let queue = &mut w.toward[side];
        if queue.is_empty() {
            if w.cut || w.hung_up[1 - side] {
                w.gone[side] = true;
                let reset = w.cut;
                self.retire(wire);
                return Some(Arrival::End { reset });
            }
            return None;
        }
        let len = if rng.random_bool(0.5) {
            queue.len()
        } else {
            rng.random_range(1..=queue.len())
        };
        Some(Arrival::Bytes(queue.drain(..len).collect()))
    }

    /// `end` hangs up (or is gone): it reads nothing more; the other end
    /// reads what is left, then the end.
    pub(crate) fn close(&mut self, (wire, side): WireEnd) {
        let w = &mut self.wires[wire];
        w.hung_up[side] = true;
        w.gone[side] = true;
        w.toward[side].clear();
        self.retire(wire);
    }

    fn retire(&mut self, wire: usize) {
        if self.wires[wire].gone.iter().all(|gone| *gone) {
            self.active.remove(&wire);
        }
    }

    /// `end`'s process died: the other end reads what was in flight, then
    /// a reset.
    pub(crate) fn reset(&mut self, (wire, side): WireEnd) {
        let w = &mut self.wires[wire];
        w.gone[side] = true;
        w.toward[side].clear();
        w.cut = true;
        self.retire(wire);
    }

    /// Wires with both ends still there.
    pub(crate) fn open_wires(&self) -> Vec<usize> {
        self.active
            .iter()
            .copied()
            .filter(|&index| {
                let w = &self.wires[index];
                !w.cut && !w.gone[0] && !w.gone[1]
            })
            .collect()
    }

    /// Cuts a wire: each direction keeps a random prefix of what is in
    /// flight. Returns how many bytes each end still gets.
    pub(crate) fn cut(&mut self, wire: usize, rng: &mut StdRng) -> (usize, usize) {
        let w = &mut self.wires[wire];
        w.cut = true;
        let mut kept = [0; 2];
        for (side, queue) in w.toward.iter_mut().enumerate() {
            let keep = rng.random_range(0..=queue.len());
            queue.truncate(keep);
            kept[side] = keep;
        }
        (kept[0], kept[1])
    }

    /// The most bytes waiting in one direction of one wire.
    pub(crate) fn most_queued(&self) -> usize {
        self.active
            .iter()
            .flat_map(|&index| self.wires[index].toward.iter().map(VecDeque::len))
            .max()
            .unwrap_or(0)
    }
}
