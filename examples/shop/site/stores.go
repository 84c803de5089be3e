package site

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/postgres"
	"github.com/tailorhq/tailor/store/redis"
)

// openStore opens the store named by dsn: a redis:// or rediss:// URL, a
// postgres:// or postgresql:// URL, or else the path of a bbolt file. The
// returned func closes the store and what it opened.
func openStore(ctx context.Context, dsn string) (store.Store, func() error, error) {
	switch {
	case strings.HasPrefix(dsn, "redis://"), strings.HasPrefix(dsn, "rediss://"):
		opt, err := goredis.ParseURL(dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("-store %s: %w", redactURL(dsn), err)
		}
		c := goredis.NewClient(opt)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.Ping(pctx).Err(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("-store %s: %w", redactURL(dsn), err)
		}
		s, err := redis.New(c, redis.Options{})
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		return s, func() error { return errors.Join(s.Close(), c.Close()) }, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("-store %s: %w", redactURL(dsn), err)
		}
		s, err := postgres.New(pool, postgres.Options{})
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.Migrate(mctx); err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("-store %s: migrate: %w", redactURL(dsn), err)
		}
		return s, func() error { err := s.Close(); pool.Close(); return err }, nil
	case strings.Contains(dsn, "://"):
		return nil, nil, fmt.Errorf("-store %s: unknown scheme (want redis://, postgres:// or a file path)", redactURL(dsn))
	}
	s, err := bolt.Open(dsn, bolt.Options{})
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// redactURL hides a password in a URL for error messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return u
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
}
