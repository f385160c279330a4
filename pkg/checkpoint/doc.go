// Package checkpoint is poller's lease coordination: the leases and checkpoints kept in one DynamoDB
// table, the only coordination between poller replicas, and the Coordinator that shares a pipeline's
// leases out among them.
//
// In the data flow it sits beside package pipeline. The pipeline discovers a stream's shards and
// creates their leases; its Coordinator decides, round after round, which of them this worker holds,
// and tells the pipeline which shards to start (Moves.Start), drain for a handoff (Moves.Drain) or stop
// at once (Renew's lost leases). Each shard worker then writes its checkpoints through its Held lease
// and passes every call to the outside (sink, on_failure) through its Fence.
//
// # The pieces
//
//   - Store reads and writes the lease table: leases (Create, Take, Want, Delete, Reset), worker
//     heartbeats, the first run's decision item (Decide) and the operator's control item (Control,
//     SetPaused).
//   - Held is a lease this worker holds: renewals, checkpoints, finish, release and handoff, every one
//     fenced by the lease counter.
//   - Tracker judges expiry the only safe way: on this worker's monotonic clock.
//   - Coordinator runs one pipeline's rounds on one worker: renewals, heartbeat, List, the plan (each
//     worker's fair share, with hysteresis; a pure function of the listing), requests, handoffs to live
//     workers, and releases on a graceful stop (Leave). Its Hooks are told what it does.
//   - Fleet is one process's view shared by its pipelines' Coordinators, so that the fair share is
//     one over every pipeline the process runs, not one per pipeline.
//   - Fence is the lease side of a shard's sink calls: is the lease still this worker's, and until
//     when may a request go out.
//
// # The lease table
//
// One table (leases.table, default poller-leases), on-demand billing, holds every pipeline. Its key:
//
//	pipeline  S  hash key: the pipeline name (the consumer name; checkpoints are kept per pipeline)
//	key       S  range key: "shard#<shardId>" for a lease, "worker#<workerId>" for a worker heartbeat
//
// A pipeline's leases and live workers are read with one paginated Query on pipeline (strongly
// consistent), never a Scan; items whose key has another prefix are ignored, so later versions may add
// kinds of items.
//
// # Tumbling window items (key "window#<shardId>")
//
// With tumbling_window, each shard's open window (LoadWindow, SaveWindow), written after each
// successful sink call of the window and after its final call: window_start_ms (N, the window's
// start, Unix ms), window_state (S, the handler's last state as JSON, at most 256 KB so that the item
// stays within DynamoDB's 400 KB), window_through (S, the last record the state covers: a new owner
// skips the records up to it, which the checkpoint may not have passed), window_closed (BOOL, the
// final call was made) and updated_at. Deleted with the lease (Delete) and by Reset. Not fenced: only
// the lease's holder delivers, and a holder that lost its lease stops at its next sink call (Fence).
//
// # Lease items (key "shard#<shardId>")
//
//	shard_id     S     the DynamoDB Streams shard ID
//	stream_arn   S     the stream the shard belongs to (a re-enabled stream has a new ARN)
//	parents      L     parent shard IDs (S), so any worker can order a child after its parents
//	owner        S     worker ID of the holder; absent when the lease is free
//	counter      N     lease counter, 1 at creation, bumped by every write; the fencing token
//	checkpoint   S     sequence number of the last delivered record (decimal digits, compared as a big
//	                   integer); absent when nothing was delivered yet
//	finished     BOOL  true once the shard is closed and every record of it was delivered
//	finished_at  S     when finished was set (RFC 3339, UTC, the writer's wall clock; informational)
//	updated_at   S     time of the last write (RFC 3339, UTC, the writer's wall clock; informational)
//	takeovers    N     times the lease was taken from another owner (not from a free lease)
//	start_at     S     the first run's decision: "LATEST" on the shards open at a LATEST first run,
//	                   "SKIPPED" on the ones closed then (created finished); "AT_TIMESTAMP" for an
//	                   AT_TIMESTAMP first run or a reset to a time; absent means TRIM_HORIZON
//	start_time   S     when LATEST was resolved for the shard (RFC 3339, the resolver's clock), written
//	                   before the LATEST iterator was asked for; for AT_TIMESTAMP, the time records
//	                   are kept from (the ones created before it are skipped)
//	start_seq    S     the first record read at LATEST, written before it was delivered: reading
//	                   resumes AT it until the first checkpoint
//	start_iterator S   the shard iterator of a LATEST shard with no record read yet, written when its
//	                   holder released or handed it over: the next holder reads on from it
//	wanted_by    S     a worker that asked the owner to hand the lease over (a cooperative steal, when
//	                   it is below its fair share); absent when nobody asked
//	iterator_age N     the owner's last report of the shard's iterator age in seconds (Held.ReportAge),
//	                   written with each write that keeps the lease, removed when it is given up
//
// A finished lease keeps its checkpoint (the last sequence number of the shard, or absent for a shard
// that closed empty) and has no owner. The finished flag, not a SHARD_END sentinel in checkpoint, says
// the shard is done, so checkpoint is always a sequence number.
//
// # The decision item (key "start")
//
//	position     S     the starting_position the first run was decided with
//	start_time   S     its starting_position_timestamp, for AT_TIMESTAMP (RFC 3339)
//	owner        S     the deciding worker while not done
//	counter      N     bumped by every write of the item; the decider's token
//	done         BOOL  every shard of the decision's listing has its lease
//
// Created once with attribute_not_exists (Store.Decide): its creator alone creates the first run's
// leases; a decider whose counter stands still may be taken over (TakeDecision, on the counter seen).
//
// # The control item (key "control")
//
//	paused       BOOL  the operator paused the pipeline (poller pause; resume writes false)
//	counter      N     bumped by every write
//	updated_at   S     time of the last write (informational)
//
// Every replica reads it at each round (Store.Control) and honours it with no restart: the pipeline
// stops its shard workers gracefully, and its Coordinator (SetPaused) keeps their leases, renewed
// and idle, and moves none until resume. An absent item means running.
//
// Reset (poller reset, only while paused) rewrites a lease's start and clears its checkpoint, pinned
// start and finished flag, conditional on the counter the caller listed; it also frees the lease and
// bumps the counter, so the worker that kept it while paused is fenced (its next renewal is refused)
// and never runs on from the position it held in memory. After resume the lease is taken afresh from
// the table; a Coordinator also drops, unstarted, any idle lease the listing shows written by another.
//
// # Worker items (key "worker#<workerId>")
//
//	worker_id    S     the worker ID
//	counter      N     heartbeat counter, bumped by every heartbeat (Beat), only by the worker itself
//	protocol     N     ProtocolVouch (2): the heartbeat vouches for the worker's leases; absent on
//	                   versions that renew every lease on its own
//	takes        N     leases taken over this heartbeat (Take with OwnerBeat)
//	vouched_counter N  the counter, written with it by every heartbeat of protocol 2: an older
//	                   version's heartbeat (a worker ID reused) moves counter alone, and the item
//	                   then vouches for nothing (Worker.Vouches)
//	updated_at   S     time of the last heartbeat (informational)
//
// # Rules
//
// Every lease write is conditional: Create on the item not existing; Take and Reset on counter = the
// counter the taker (the operator) observed; Renew, Checkpoint, PinStart, PinIterator, Finish, Release and Handoff on owner = me
// AND counter = the counter of my last write; Delete on counter = observed AND finished. Each of these
// bumps counter, so a counter value names exactly one state of the lease, and a worker that lost its lease (paused, partitioned,
// slow) can never write for it again: its counter is stale. A failed condition is reported as
// (false, nil), never as an error.
//
// Want is the exception: it writes only wanted_by, on owner = observed AND not finished AND wanted_by =
// observed, and leaves counter alone. A request is not a state of the lease: it must neither fence the
// owner (which finishes its batches in flight, checkpoints, and then hands over with Handoff: owner =
// the requester) nor look like a renewal to observers. Take, Release, Finish and Handoff clear it.
//
// Expiry is judged by each observer on its own monotonic clock: a lease whose counter did not move for
// lease_duration may be taken (see Tracker). Wall-clock times in the table are for humans only.
//
// # Heartbeats vouch for leases
//
// A worker whose item has protocol 2 keeps its leases with its heartbeat: a lease of such an owner
// has expired only once its counter and its owner's heartbeat counter both stood still for
// lease_duration. It is then taken in one transaction (Take with Lease.OwnerBeat): the lease on its
// counter, and the owner's item, takes + 1, on the heartbeat counter seen to stand still; a
// heartbeat in between cancels the take. The owner writes its heartbeat conditional on its own last
// one (counter and takes), so a heartbeat after a take, or after its item was removed as dead, fails
// its condition: that heartbeat is rewritten unconditionally and vouches for nothing, and from then
// on each lease is vouched for again only once a write of its own (a renewal, a checkpoint) succeeded
// (Fence.Unvouch): the ones taken are found lost. A clean heartbeat sent at t confirms each lease
// held, uncontested and caught up (see Coordinator.List) as a renewal sent at t would (Fence.Vouch):
// another worker takes it only after seeing the heartbeat stand still for lease_duration, which
// began after t. The heartbeat is written every renew_interval on a goroutine of its own
// (Coordinator.StartHeartbeats), whatever the rounds are doing.
//
// A worker judges by the lease counter alone when the owner's item lacks protocol 2 (an older
// version) or is gone. Older versions judge every lease that way, so a worker vouches only while
// every worker item of the pipeline has protocol 2; otherwise each lease is renewed on its own, as
// those versions expect. The item of a dead worker is kept while it owns a lease, for the takes.
//
// A checkpoint never moves backwards: Held knows the item's checkpoint exactly (its writes are
// conditional on the counter of its own last write) and refuses a smaller sequence number.
//
// Finished leases are deleted by the caller, with Delete, once their children run and the stream's
// 24-hour retention has passed; a child whose parent lease is gone treats the parent as finished.
//
// # Load
//
// The table's load is proportional to shards and workers, never to records: one write per checkpoint,
// one write per lease renewal (none for a caught-up lease while heartbeats vouch), one write per worker
// per heartbeat, one Query (about 3,000 lease items per 1 MB page) per List, and one GetItem of the
// control item per round. Each method's comment gives its DynamoDB calls.
package checkpoint
