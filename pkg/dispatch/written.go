package dispatch

// maxUnwrittenBatches is how many batches of one lane may have reached the sink beyond the last
// checkpoint written (the repeat bound, see Dispatcher): the one whose checkpoint is being written,
// and the next.
const maxUnwrittenBatches = 2

// written follows the last checkpoint written (acknowledged by the lease table), which lags behind
// the tracker's checkpoint while a write is in flight: the checkpoints handed to the Checkpointer
// and not yet known written, and each lane's batches that the checkpoint written has not passed.
// Record ids are the tracker's; they grow in read order, so a batch's last record is its newest.
//
// The zero written knows no lane yet; every method grows it as needed.
type written struct {
	sets []ckSet // handed to the Checkpointer, not yet known written, oldest first
	end  int64   // every id below end is passed by the checkpoint written
	// lanes holds, per lane, the id of the last record of each batch sent that the checkpoint
	// written has not passed, oldest first.
	lanes [][]int64
}

// ckSet is a checkpoint handed to the Checkpointer, and the tracker's PassedEnd then.
type ckSet struct {
	seq string
	end int64
}

// maxSets bounds written.sets. While a write is retried (a throttled lease table), every page
// whose records are filtered out can move the checkpoint; those checkpoints must not pile up.
const maxSets = 16

// sent records a batch of lane whose newest record is last.
func (w *written) sent(lane int, last int64) {
	for len(w.lanes) <= lane {
		w.lanes = append(w.lanes, nil)
	}
	w.lanes[lane] = append(w.lanes[lane], last)
}

// set records that seq, which passes every id below end, was handed to the Checkpointer. Past
// maxSets it takes the place of the newest one recorded: a notice that the one it replaced was
// written is then ignored (the checkpoint written seems to lag more than it does, never less), and
// the newest, which the Checkpointer always writes in the end, is kept.
func (w *written) set(seq string, end int64) {
	if len(w.sets) == maxSets {
		w.sets = w.sets[:maxSets-1]
	}
	w.sets = append(w.sets, ckSet{seq: seq, end: end})
}

// wrote records that seq was written, and with it every checkpoint set before it (the
// Checkpointer writes them in order, skipping those a newer one replaced). A seq never set is
// ignored: the checkpoint written is then not known to have moved.
func (w *written) wrote(seq string) {
	i := len(w.sets) - 1
	for i >= 0 && w.sets[i].seq != seq {
		i--
	}
	if i < 0 {
		return
	}
	w.end = w.sets[i].end
	w.sets = append(w.sets[:0], w.sets[i+1:]...)
	for l, batches := range w.lanes {
		n := 0
		for n < len(batches) && batches[n] < w.end {
			n++
		}
		w.lanes[l] = append(batches[:0], batches[n:]...)
	}
}

// batches is how many batches of lane reached the sink that the checkpoint written has not
// passed: in flight, done behind a slower lane, or passed by a checkpoint not yet written.
func (w *written) batches(lane int) int {
	if lane < len(w.lanes) {
		return len(w.lanes[lane])
	}
	return 0
}
