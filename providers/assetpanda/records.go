package assetpanda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is a record of a collection. Fields holds every field of the
// collection by field name; single-selects read back as the option name;
// empty or null is "".
type Record struct {
	ID        string
	Fields    map[string]string
	Archived  bool
	UpdatedAt time.Time
}

// RecordUpdate sets Fields (by field name) on the record ID; fields left
// out are not touched, "" clears a field.
type RecordUpdate struct {
	ID     string
	Fields map[string]string
}

// Result is the outcome for one object of a bulk call. Index is its
// position in the input, ID the record id on success. Err is an *Error for
// per-object API errors (e.g. Code 2, not unique) and for objects the
// client refused before sending (unknown field or option).
type Result struct {
	Index int
	ID    string
	Err   error
}

// lookupBatchMax is the largest uncertain batch looked up with one search
// per key; larger ones read the whole collection instead.
const lookupBatchMax = 10

// encode maps values by field name to the wire form by field key.
func (col *Collection) encode(vals map[string]string) (map[string]any, error) {
	out := make(map[string]any, len(vals))
	for name, v := range vals {
		f, err := col.Field(name)
		if err != nil {
			return nil, err
		}
		if f.Type == fieldTypeList && v != "" {
			o, err := f.Option(v)
			if err != nil {
				return nil, err
			}
			out[f.Key] = encodeOption(o)
			continue
		}
		out[f.Key] = v
	}
	return out, nil
}

// decode maps a wire object to a Record.
func (col *Collection) decode(obj wireObject) Record {
	r := Record{ID: string(obj.ID), Archived: obj.Archived, Fields: make(map[string]string, len(col.Fields))}
	if obj.UpdatedAt != "" {
		r.UpdatedAt, _ = time.Parse(time.RFC3339Nano, obj.UpdatedAt)
	}
	for i := range col.Fields {
		f := &col.Fields[i]
		r.Fields[f.Name] = decodeValue(f, obj.values[f.Key])
	}
	return r
}

// Records reads the whole collection, archived records included, 1000 per
// page. The read must prove it is complete (see search); otherwise it fails
// with an *Error matching ErrIncomplete, never a shorter answer.
func (c *Client) Records(ctx context.Context, col *Collection) ([]Record, error) {
	return c.collect(ctx, col, "read records", searchRequest{}, "", nil)
}

// ScanRecords reads the whole collection as Records does, handing each
// record to fn as its page arrives instead of collecting them, so that a
// caller keeping a compact form of the records never holds them all in
// this form. A failed or incomplete read returns an error after fn saw
// some records: the caller must then discard what it kept. An error from
// fn stops the read and is returned.
//
// served is the server's time (its Date header) when it answered the first
// page, zero when it sent none: every record written after it has an
// updated_at at or after it, which is where a later RecordsModifiedSince
// starts.
func (c *Client) ScanRecords(ctx context.Context, col *Collection, fn func(Record) error) (served time.Time, err error) {
	err = c.search(ctx, col, "read records", searchRequest{}, "", fn, &served)
	return served, err
}

// RecordsModifiedSince reads the records (archived included) whose
// updated_at is at or after since, with the search's last_modified filter,
// so that edits made in Asset Panda between two full reads can be picked
// up by reading only them. The read must prove it is complete, as in
// Records. The filter's key is documented; its value's shape ({gte: RFC
// 3339}) is assumed (see wire.go). served is the server's time when it
// answered the first page, as in ScanRecords.
func (c *Client) RecordsModifiedSince(ctx context.Context, col *Collection, since time.Time) (recs []Record, served time.Time, err error) {
	body := searchRequest{LastModified: &modifiedRange{GTE: since.UTC().Format(time.RFC3339Nano)}}
	recs, err = c.collect(ctx, col, "read modified records", body, "", &served)
	if err != nil {
		return nil, time.Time{}, err
	}
	return recs, served, nil
}

// collect is search, collecting the records.
func (c *Client) collect(ctx context.Context, col *Collection, op string, body searchRequest, key string, served *time.Time) ([]Record, error) {
	var out []Record
	err := c.search(ctx, col, op, body, key, func(r Record) error {
		out = append(out, r)
		return nil
	}, served)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordsByID reads the records with the given ids (archived included), up
// to 1000 ids per request, so that re-checking a few objects never costs a
// read of the whole collection. Ids that no longer exist are absent from
// the answer. Each batch must prove it is complete, as in Records.
func (c *Client) RecordsByID(ctx context.Context, col *Collection, ids []string) ([]Record, error) {
	var out []Record
	for batch := range slices.Chunk(ids, pageSize) {
		recs, err := c.collect(ctx, col, "read records by id", searchRequest{IDs: batch}, "", nil)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// FindRecords returns the records (archived included) whose field equals
// value (case-insensitive, as the service matches). The answer must prove
// it is complete, as in Records.
func (c *Client) FindRecords(ctx context.Context, col *Collection, field, value string) ([]Record, error) {
	f, err := col.Field(field)
	if err != nil {
		return nil, err
	}
	return c.collect(ctx, col, "find records", searchRequest{FieldFilters: map[string]string{f.Key: value}}, value, nil)
}

// search reads every page of a search; body's view is set to include
// archived records. Every page must carry a total (totals.objects or
// total), the total must not change between pages, every page but the
// last must be full, every record must carry an id and none may arrive
// twice, and the records that
// arrived must add up to the total. A whole-collection read also checks
// the total against totals.group_totals, and not_viewable must be 0.
//
// served, when not nil, receives the time of the server's Date header on
// the first page (zero when it sent none or an unreadable one).
func (c *Client) search(ctx context.Context, col *Collection, op string, body searchRequest, key string, fn func(Record) error, served *time.Time) error {
	body.ViewArchived = viewArchivedAll
	whole := body.FieldFilters == nil && body.IDs == nil && body.LastModified == nil
	pc := pageCheck{what: fmt.Sprintf("collection %q", col.Name), unit: "records"}
	offset := 0
	id := strconv.Itoa(col.ID)
	for {
		var resp searchResponse
		var rep reply
		q := url.Values{qOffset: {strconv.Itoa(offset)}, qLimit: {strconv.Itoa(pageSize)}}
		rq := request{
			op: op, route: routeSearch, args: []string{id}, query: q, key: key,
			body: body,
			out:  &resp, idempotent: true,
		}
		if served != nil && offset == 0 {
			rq.reply = &rep
		}
		if err := c.do(ctx, rq); err != nil {
			return err
		}
		if rq.reply != nil {
			*served, _ = http.ParseTime(rep.header.Get("Date"))
		}
		total, known := resp.total()
		if p := pc.total(total, known); p != nil {
			return p.err(op, key)
		}
		if resp.NotViewable != nil && *resp.NotViewable > 0 {
			return (&incomplete{msg: fmt.Sprintf("%s: the service hides %d records from this API client (not_viewable), so the read cannot be shown complete; grant it access to every record",
				pc.what, *resp.NotViewable)}).err(op, key)
		}
		for _, o := range resp.Objects {
			if p := pc.id(string(o.ID)); p != nil {
				return p.err(op, key)
			}
			if err := fn(col.decode(o)); err != nil {
				return err
			}
		}
		c.progress(len(resp.Objects))
		done, p := pc.page(offset, len(resp.Objects), resp.limit(pageSize))
		if p != nil {
			return p.err(op, key)
		}
		if g, ok := resp.groupTotal(); ok && whole && g > total {
			return (&incomplete{retry: true, msg: fmt.Sprintf("%s: the reply says %d records match but the collection holds %d (group_totals), so the read cannot be shown complete",
				pc.what, total, g)}).err(op, key)
		}
		if done {
			return nil
		}
		offset += len(resp.Objects)
	}
}

// pageCheck follows a paged read and says whether it is complete, or why
// it cannot be shown to be.
type pageCheck struct {
	what  string // what is read, e.g. `collection "People"`
	unit  string // what it holds, e.g. "records"
	want  int    // the total of the first page
	known bool   // want is set
	got   int    // objects arrived so far
	seen  map[string]struct{}
}

// incomplete is why a read cannot be shown complete.
type incomplete struct {
	msg   string
	retry bool // a retry may help (the data moved, or a page came back short)
}

func (p *incomplete) err(op, key string) error {
	return &Error{Op: op, Key: key, Message: p.msg, Retryable: p.retry, Incomplete: true}
}

// total checks the total a page reports.
func (pc *pageCheck) total(total int, known bool) *incomplete {
	switch {
	case !known:
		return &incomplete{msg: fmt.Sprintf("%s: the reply carries no total, so the read cannot be shown complete", pc.what)}
	case total < 0:
		return &incomplete{msg: fmt.Sprintf("%s: the reply says the total is %d, so the read cannot be shown complete", pc.what, total)}
	case pc.known && total != pc.want:
		return &incomplete{retry: true, msg: fmt.Sprintf("%s: the total changed from %d to %d between pages, so the read cannot be shown complete",
			pc.what, pc.want, total)}
	}
	pc.want, pc.known = total, true
	return nil
}

// id records an object's id; one that arrived before means the pages
// overlap. An object without an id fails the read: it could be one that
// arrived before, so the pages cannot be shown not to overlap.
func (pc *pageCheck) id(id string) *incomplete {
	if id == "" {
		return &incomplete{msg: fmt.Sprintf("%s: the reply carries a %s without an id, so the read cannot be shown complete",
			pc.what, strings.TrimSuffix(pc.unit, "s"))}
	}
	if pc.seen == nil {
		pc.seen = map[string]struct{}{}
	}
	if _, dup := pc.seen[id]; dup {
		return &incomplete{retry: true, msg: fmt.Sprintf("%s: %s arrived twice (id %s), so the pages overlap and the read cannot be shown complete",
			pc.what, strings.TrimSuffix(pc.unit, "s"), id)}
	}
	pc.seen[id] = struct{}{}
	return nil
}

// page takes a page of n objects at offset, asked with limit; it reports
// whether the read is complete.
func (pc *pageCheck) page(offset, n, limit int) (bool, *incomplete) {
	pc.got += n
	switch {
	case pc.want == 0 && n > 0:
		return false, &incomplete{msg: fmt.Sprintf("%s: the reply says the total is 0 but carries %d %s, so the read cannot be shown complete",
			pc.what, n, pc.unit)}
	case pc.got > pc.want:
		return false, &incomplete{retry: true, msg: fmt.Sprintf("%s: %d %s arrived but the reply says the total is %d, so the read cannot be shown complete",
			pc.what, pc.got, pc.unit, pc.want)}
	case pc.got == pc.want:
		return true, nil
	case n < limit:
		return false, &incomplete{retry: true, msg: fmt.Sprintf("%s: partial read: the page at offset %d has %d %s, stopping short at %d of the %d the reply announces",
			pc.what, offset, n, pc.unit, pc.got, pc.want)}
	}
	return false, nil
}

// CreateRecords creates records (values by field name) in batches of 200.
// key names the unique field used to look records up when the outcome of a
// create is unknown (timeout, dropped connection, 5xx): those records are
// searched by key and only the missing ones are sent again, so no
// duplicate is ever made. The error is non-nil only when the call as a
// whole had to stop; per-object failures are in the results.
func (c *Client) CreateRecords(ctx context.Context, col *Collection, key string, recs []map[string]string) ([]Result, error) {
	keyField, err := col.Field(key)
	if err != nil {
		return nil, fmt.Errorf("create records: key: %w", err)
	}
	results := make([]Result, len(recs))
	var pending []pendingItem
	for i, r := range recs {
		results[i].Index = i
		body, err := col.encode(r)
		if err != nil {
			results[i].Err = &Error{Op: "create record", Key: r[key], Message: err.Error(), Err: err}
			continue
		}
		pending = append(pending, pendingItem{idx: i, body: body, key: r[key]})
	}
	for start := 0; start < len(pending); start += maxBulk {
		batch := pending[start:min(start+maxBulk, len(pending))]
		if err := c.createBatch(ctx, col, keyField, batch, results); err != nil {
			for _, it := range pending[start:] {
				if results[it.idx].Err == nil && results[it.idx].ID == "" {
					results[it.idx].Err = err
				}
			}
			return results, err
		}
	}
	return results, nil
}

type pendingItem struct {
	idx  int
	body map[string]any
	key  string
}

// outcomeUnknown reports whether a failed create may have been committed:
// no response arrived (timeout, dropped connection) or the service failed.
func outcomeUnknown(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 500 || e.Status == 0 && e.Message == msgNoResponse
}

// stops reports whether err ends the whole call: the caller's context is
// done, or the credentials or permissions were refused (Terminal).
func stops(ctx context.Context, err error) bool {
	var e *Error
	if errors.As(err, &e) && e.Terminal() {
		return true
	}
	return ctx.Err() != nil
}

func (c *Client) createBatch(ctx context.Context, col *Collection, keyField *Field, items []pendingItem, results []Result) error {
	id := strconv.Itoa(col.ID)
	todo := items
	for round := 1; ; round++ {
		body := bulkRequest{Objects: make([]map[string]any, len(todo))}
		for i, it := range todo {
			body.Objects[i] = it.body
		}
		var resp bulkResponse
		err := c.do(ctx, request{op: "create records", route: routeCreate, args: []string{id}, body: body, out: &resp})
		if err == nil {
			c.applyBulk("create record", todo, resp, results, func(it pendingItem, o wireObject) bool {
				return it.key == "" || strings.EqualFold(decodeValue(keyField, o.values[keyField.Key]), it.key)
			})
			return nil
		}
		if !outcomeUnknown(err) || round >= 3 || ctx.Err() != nil {
			if stops(ctx, err) {
				return err
			}
			for _, it := range todo {
				results[it.idx].Err = withKey("create record", err, it.key)
			}
			return nil
		}
		// The service may have committed some or all: look them up by key.
		c.log.Info("asset panda create outcome unknown, looking records up by key",
			"collection", col.Name, "objects", len(todo), "err", err)
		found, lerr := c.lookupKeys(ctx, col, keyField, todo)
		if lerr != nil {
			for _, it := range todo {
				results[it.idx].Err = withKey("create record", fmt.Errorf("create outcome unknown (%w) and lookup by key failed: %w", err, lerr), it.key)
			}
			if stops(ctx, lerr) {
				return lerr
			}
			return nil
		}
		var again []pendingItem
		for _, it := range todo {
			switch rec, ok := found[strings.ToLower(it.key)]; {
			case ok:
				results[it.idx] = Result{Index: it.idx, ID: rec}
			case it.key == "":
				results[it.idx].Err = withKey("create record", fmt.Errorf("create outcome unknown and the record has no %q to look it up by: %w", keyField.Name, err), "")
			default:
				again = append(again, it)
			}
		}
		if len(again) == 0 {
			return nil
		}
		todo = again
	}
}

// lookupKeys finds the records of col whose key field holds one of the
// items' keys; it returns id by folded key.
func (c *Client) lookupKeys(ctx context.Context, col *Collection, keyField *Field, items []pendingItem) (map[string]string, error) {
	found := map[string]string{}
	if len(items) <= lookupBatchMax {
		for _, it := range items {
			if it.key == "" {
				continue
			}
			recs, err := c.FindRecords(ctx, col, keyField.Name, it.key)
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				if strings.EqualFold(r.Fields[keyField.Name], it.key) {
					found[strings.ToLower(it.key)] = r.ID
				}
			}
		}
		return found, nil
	}
	recs, err := c.Records(ctx, col)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, it := range items {
		want[strings.ToLower(it.key)] = true
	}
	for _, r := range recs {
		k := strings.ToLower(r.Fields[keyField.Name])
		if k != "" && want[k] {
			found[k] = r.ID
		}
	}
	return found, nil
}

// withKey copies an *Error with the object's key set, or wraps err.
func withKey(op string, err error, key string) error {
	if e, ok := err.(*Error); ok {
		cp := *e
		if cp.Key == "" {
			cp.Key = key
		}
		return &cp
	}
	return &Error{Op: op, Key: key, Retryable: IsRetryable(err), Err: err}
}

// applyBulk copies a bulk response into results. is says whether the
// object the reply returns in an item's place is that item's record (an
// update: the same id; a create: the same key).
func (c *Client) applyBulk(op string, items []pendingItem, resp bulkResponse, results []Result, is func(pendingItem, wireObject) bool) {
	failed := map[int]bool{}
	for _, be := range resp.Errors {
		if be.Index < 0 || be.Index >= len(items) {
			continue
		}
		it := items[be.Index]
		failed[be.Index] = true
		msg := be.Message
		if msg == "" {
			msg = (&wireError{Errors: mustJSON(be.Errors)}).text()
		}
		msg = c.scrub(msg)
		results[it.idx].Err = &Error{Op: op, Status: http.StatusUnprocessableEntity, Key: it.key, Message: msg, Code: be.Code}
	}
	for i, it := range items {
		if failed[i] {
			continue
		}
		var obj wireObject
		if i < len(resp.Objects) {
			obj = resp.Objects[i]
		}
		id := string(obj.ID)
		if id == "" {
			results[it.idx].Err = &Error{Op: op, Key: it.key, Message: "the service returned no result for this object"}
			continue
		}
		if !is(it, obj) {
			results[it.idx].Err = &Error{Op: op, Key: it.key, Message: fmt.Sprintf("the service returned record %s in this object's place, so its outcome is unknown", id)}
			continue
		}
		results[it.idx].ID = id
		results[it.idx].Err = nil
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// UpdateRecords updates records in batches of 200. Updates are safe to
// repeat, so 5xx and network errors are retried with backoff. The error is
// non-nil only when the call as a whole had to stop; per-object failures
// are in the results.
func (c *Client) UpdateRecords(ctx context.Context, col *Collection, ups []RecordUpdate) ([]Result, error) {
	results := make([]Result, len(ups))
	var pending []pendingItem
	for i, u := range ups {
		results[i].Index = i
		body, err := col.encode(u.Fields)
		if err == nil && u.ID == "" {
			err = errors.New("no record id")
		}
		if err != nil {
			results[i].Err = &Error{Op: "update record", Key: u.ID, Message: err.Error(), Err: err}
			continue
		}
		body[objKeyID] = u.ID
		pending = append(pending, pendingItem{idx: i, body: body, key: u.ID})
	}
	id := strconv.Itoa(col.ID)
	for start := 0; start < len(pending); start += maxBulk {
		batch := pending[start:min(start+maxBulk, len(pending))]
		body := bulkRequest{Objects: make([]map[string]any, len(batch))}
		for i, it := range batch {
			body.Objects[i] = it.body
		}
		var resp bulkResponse
		err := c.do(ctx, request{op: "update records", route: routeUpdate, args: []string{id}, body: body, out: &resp, idempotent: true})
		if err != nil {
			if stops(ctx, err) {
				for _, it := range pending[start:] {
					results[it.idx].Err = withKey("update record", err, it.key)
				}
				return results, err
			}
			for _, it := range batch {
				results[it.idx].Err = withKey("update record", err, it.key)
			}
			continue
		}
		c.applyBulk("update record", batch, resp, results, func(it pendingItem, o wireObject) bool { return string(o.ID) == it.key })
	}
	return results, nil
}

// ArchiveRecords archives the records ids (200 per call). Archived records
// keep their data and can be brought back with UnarchiveRecords.
func (c *Client) ArchiveRecords(ctx context.Context, col *Collection, ids []string) error {
	return c.archive(ctx, col, ids, routeArchive, "archive records")
}

// UnarchiveRecords brings archived records back (200 per call).
func (c *Client) UnarchiveRecords(ctx context.Context, col *Collection, ids []string) error {
	return c.archive(ctx, col, ids, routeUnarchive, "unarchive records")
}

func (c *Client) archive(ctx context.Context, col *Collection, ids []string, r route, op string) error {
	id := strconv.Itoa(col.ID)
	for start := 0; start < len(ids); start += maxBulk {
		batch := ids[start:min(start+maxBulk, len(ids))]
		if err := c.do(ctx, request{op: op, route: r, args: []string{id}, body: archiveRequest{ObjectIDs: batch}, idempotent: true}); err != nil {
			return err
		}
	}
	return nil
}
