package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/store"
)

// Subscribe calls fn with every profile written or deleted and every
// document put through any store on the same table and channel, this one
// included (see store.Change), until ctx is done or the store is closed. It returns once it is listening: a change
// committed after Subscribe returns is reported.
//
// A subscription holds one connection of the pool, on which it LISTENs, and
// gives it back when it ends. fn is called from one goroutine, one change at a
// time; keep it fast (drop a cache entry), because PostgreSQL queues
// notifications for a listener that does not read them, and writers fail
// once its queue is full.
//
// If the connection drops (a server restart, a network failure), the
// subscription reconnects with a jittered backoff of up to 5 s between
// attempts, for as long as ctx lasts. Changes committed while it was not
// listening are not reported: a cache that must never serve a stale profile
// for long should also expire its entries.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Change)) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return store.ErrClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()

	// The subscription ends with ctx or with the store.
	lctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.done, cancel)
	var conn *pgxpool.Conn
	err := s.again(lctx, func() (err error) {
		conn, err = s.listen(lctx)
		return err
	})
	if err != nil {
		stop()
		cancel()
		s.subs.Done()
		if s.closed.Load() {
			return store.ErrClosed
		}
		return fmt.Errorf("tailor/store/postgres: subscribe to channel %s of table %s: %w", s.channel, s.table, err)
	}
	go func() {
		defer s.subs.Done()
		defer cancel()
		defer stop()
		s.receive(lctx, conn, fn)
	}()
	return nil
}

// listen acquires a connection and LISTENs on it.
func (s *Store) listen(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, s.sql.listen); err != nil {
		discard(conn)
		return nil, err
	}
	return conn, nil
}

// receive reports notifications on conn until ctx is done, reconnecting
// when the connection fails.
func (s *Store) receive(ctx context.Context, conn *pgxpool.Conn, fn func(store.Change)) {
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if n != nil {
			fn(store.ParseChange(n.Payload))
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			s.unlisten(conn)
			return
		}
		// The connection failed: the pool destroys it on release.
		discard(conn)
		for attempt := 0; ; attempt++ {
			if sleep(ctx, reconnectBackoff(attempt)) != nil {
				return
			}
			if conn, err = s.listen(ctx); err == nil {
				break
			}
		}
	}
}

// unlisten stops listening on conn and gives it back to the pool clean: no
// LISTEN left, no notification buffered.
func (s *Store) unlisten(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "UNLISTEN *"); err != nil {
		discard(conn)
		return
	}
	// WaitForNotification returns buffered notifications first; with a
	// done context it returns at once when there are none.
	cancel()
	for {
		if n, _ := conn.Conn().WaitForNotification(ctx); n == nil {
			break
		}
	}
	conn.Release()
}

// discard closes conn instead of giving it back to the pool, for a
// connection whose state is unknown.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Hijack().Close(ctx)
}

// reconnectBackoff returns the pause before reconnection attempt+1:
// exponential from 50ms, capped at 5s, jittered in its upper half.
func reconnectBackoff(attempt int) time.Duration {
	d := 5 * time.Second
	if attempt < 7 {
		d = 50 * time.Millisecond << attempt
	}
	return d/2 + jitter(d/2)
}
