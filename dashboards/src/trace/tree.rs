//! A trace's shape: parent/child order with depth, each span's self time (its duration less
//! the time its children cover) and the critical path (the chain of work the trace's end
//! waited on, walked back from the root's end through the last-finishing child each time).

use std::collections::HashMap;

/// A span's place in time and in the tree, all the analysis needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    /// Its id.
    pub span_id: &'a str,
    /// Its parent's id; empty (or unknown to the trace) for a root.
    pub parent_span_id: &'a str,
    /// Start, ns since the epoch.
    pub start: i64,
    /// End, ns since the epoch.
    pub end: i64,
}

/// What the analysis found, indexed like the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Depth-first order from the roots (earliest first), children by start time:
    /// (index, depth). Spans caught in a parent cycle come last at depth 0.
    pub order: Vec<(usize, usize)>,
    /// Duration not covered by any child (children clipped to the span).
    pub self_ns: Vec<i64>,
    /// Time each span spends on the critical path.
    pub critical_ns: Vec<i64>,
    /// The critical path: (index, ns on the path), in order of time.
    pub critical_path: Vec<(usize, i64)>,
}

/// Analyses the spans of one trace.
pub fn analyse(nodes: &[Node]) -> Shape {
    let n = nodes.len();
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let parent: Vec<Option<usize>> = nodes
        .iter()
        .enumerate()
        .map(|(i, s)| index.get(s.parent_span_id).copied().filter(|p| *p != i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, p) in parent.iter().enumerate() {
        match p {
            Some(p) => children[*p].push(i),
            None => roots.push(i),
        }
    }
    let by_start = |a: &usize, b: &usize| {
        (nodes[*a].start, nodes[*a].span_id).cmp(&(nodes[*b].start, nodes[*b].span_id))
    };
    roots.sort_by(by_start);
    for kids in &mut children {
        kids.sort_by(by_start);
    }
    let order = tree_order(&roots, &children, n);
    let self_ns = (0..n).map(|i| self_time(nodes, i, &children[i])).collect();
    let mut critical_ns = vec![0; n];
    let mut critical_path = Vec::new();
    // The trace's critical path runs through its root that ends last.
    if let Some(root) = roots
        .iter()
        .copied()
        .max_by_key(|r| (nodes[*r].end, -nodes[*r].start))
    {
        critical_path = critical(nodes, &children, root);
        for (i, ns) in &critical_path {
            critical_ns[*i] += ns;
        }
    }
    Shape {
        order,
        self_ns,
        critical_ns,
        critical_path,
    }
}

fn tree_order(roots: &[usize], children: &[Vec<usize>], n: usize) -> Vec<(usize, usize)> {
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|r| (*r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        order.push((i, depth));
        stack.extend(children[i].iter().rev().map(|k| (*k, depth + 1)));
    }
    order.extend((0..n).filter(|i| !seen[*i]).map(|i| (i, 0)));
    order
}

/// `i`'s duration less the union of its children's intervals, clipped to it.
fn self_time(nodes: &[Node], i: usize, kids: &[usize]) -> i64 {
    let (start, end) = (nodes[i].start, nodes[i].end.max(nodes[i].start));
    let mut covered = 0;
    let mut reach = start;
    // `kids` is sorted by start.
    for k in kids {
        let (s, e) = (nodes[*k].start.max(reach), nodes[*k].end.min(end));
        if e > s {
            covered += e - s;
            reach = e;
        }
    }
    end - start - covered
}

/// The critical path under `root`: from the span's end backwards, the last child to finish
/// before the point reached is on the path (recursively), the time between belongs to the
/// span itself. Iterative, so a trace thousands of spans deep cannot overflow the stack.
fn critical(nodes: &[Node], children: &[Vec<usize>], root: usize) -> Vec<(usize, i64)> {
    struct Frame {
        span: usize,
        /// The point in time reached walking backwards.
        cursor: i64,
        /// Children by end, latest first; `next` is the first not yet considered.
        kids: Vec<usize>,
        next: usize,
    }
    let frame = |span: usize, cursor: i64| {
        let mut kids = children[span].clone();
        kids.sort_by_key(|k| std::cmp::Reverse(nodes[*k].end));
        Frame {
            span,
            cursor,
            kids,
            next: 0,
        }
    };
    // Pieces in reverse time order: (span, ns).
    let mut pieces: Vec<(usize, i64)> = Vec::new();
    let mut stack = vec![frame(root, nodes[root].end)];
    while let Some(f) = stack.last_mut() {
        let (start, end) = (nodes[f.span].start, nodes[f.span].end);
        let mut picked = None;
        while let Some(&k) = f.kids.get(f.next) {
            f.next += 1;
            let (k_start, k_end) = (nodes[k].start.max(start), nodes[k].end.min(end));
            if k_end <= f.cursor && k_end > start && k_end > k_start {
                picked = Some((k, k_start, k_end));
                break;
            }
        }
        match picked {
            Some((k, k_start, k_end)) => {
                if f.cursor > k_end {
                    pieces.push((f.span, f.cursor - k_end));
                }
                f.cursor = k_start;
                stack.push(frame(k, k_end));
            }
            None => {
                if f.cursor > start {
                    pieces.push((f.span, f.cursor - start));
                }
                stack.pop();
            }
        }
    }
    pieces.reverse();
    // Adjacent pieces of one span (a child visited between them took no time) are one.
    let mut path: Vec<(usize, i64)> = Vec::with_capacity(pieces.len());
    for (span, ns) in pieces {
        match path.last_mut() {
            Some((last, total)) if *last == span => *total += ns,
            _ => path.push((span, ns)),
        }
    }
    path
}
#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, parent: &'a str, start: i64, end: i64) -> Node<'a> {
        Node {
            span_id: id,
            parent_span_id: parent,
            start,
            end,
        }
    }

    #[test]
    fn a_chain_far_deeper_than_the_stack_is_analysed() {
        let ids: Vec<String> = (0..50_000).map(|i| format!("s{i}")).collect();
        let nodes: Vec<Node> = (0..ids.len())
            .map(|i| {
                let parent = if i == 0 { "" } else { ids[i - 1].as_str() };
                node(&ids[i], parent, i as i64, 200_000 - i as i64)
            })
            .collect();
        let shape = analyse(&nodes);
        assert_eq!(shape.order.last(), Some(&(49_999, 49_999)));
        let total: i64 = shape.critical_path.iter().map(|(_, ns)| ns).sum();
        assert_eq!(total, 200_000);
    }

    #[test]
    fn cycles_and_orphans_still_come_back_and_children_outliving_parents_are_clipped() {
        let nodes = [
            node("x", "y", 0, 10),
            node("y", "x", 0, 10),
            node("root", "", 0, 10),
            node("late", "root", 5, 50),
            node("orphan", "gone", 1, 2),
        ];
        let shape = analyse(&nodes);
        let listed: Vec<usize> = shape.order.iter().map(|(i, _)| *i).collect();
        assert_eq!(listed, [2, 3, 4, 0, 1]);
        assert_eq!(shape.self_ns[2], 5);
        // The path ends with the root: the late child counts only up to the root's end.
        assert_eq!(shape.critical_path, [(2, 5), (3, 5)]);
    }
}
