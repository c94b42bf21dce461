//! What the fuzz targets share: a cursor that turns the fuzzer's bytes into
//! the decisions a target makes (sizes, split points, choices), so that every
//! decision is in the input and a crash reproduces from its file alone.

/// Reads decisions from the front of the fuzz input; the unread rest is the
/// payload. Running out is fine: every read then gives 0.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// One byte (0 when the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Cuts `data` into consecutive pieces whose lengths cycle through `sizes`
/// (an empty `sizes` means one piece). A size of 0 yields an empty piece,
/// which is a legal read too; every piece is bounded so the loop ends.
pub fn split<'d>(data: &'d [u8], sizes: &[u8]) -> Vec<&'d [u8]> {
    if sizes.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    // Empty pieces are capped so that an all-zero `sizes` still ends.
    const MAX_EMPTIES: usize = 64;
    let mut empties = 0;
    while !rest.is_empty() {
        let n = usize::from(sizes[i % sizes.len()]).min(rest.len());
        i += 1;
        if n == 0 {
            empties += 1;
            if empties > MAX_EMPTIES {
                out.push(rest);
                break;
            }
        }
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}
