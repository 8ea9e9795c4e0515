-- One batch of usage events, in one round trip: deduplicate each event id and aggregate the new
-- events into the tenant's hourly hashes. Every key carries the tenant's {hash tag}: one slot.
-- The claim of an id and the counting of its event happen in this one script, so an event is never
-- claimed without being counted, nor counted twice.
--
-- KEYS[1]        the set of hours that have events (the rollup's list)
-- KEYS[2..1+H]   one hash per hour, fields "<metric>|c" count, "<metric>|s" sum, "<metric>|m" max,
--                "<metric>|l" latest as "<ms>:<value>", "<metric>|u|<value>" a distinct value
-- KEYS[2+H..]    one event-id key per event (exists while the id is remembered)
-- ARGV[1] seconds an id is remembered   ARGV[2] H   ARGV[3..2+H] the hours' labels
-- then five per event: hour index (1..H), metric, kind (c s m l u), value, time in ms ('' if unused)
-- Values of s, m and l are integers of the metric's smallest unit, at most 1e15 in size.
--
-- Returns {accepted, duplicates}, or the error "overflow <metric>" and no change at all when a sum
-- would pass 1e16 in one hour (the rolled-up daily and monthly totals stay within 64 bits).
-- Redis calls: one SET per event, one HSET per unique_count event, a few per hour and metric.
local ttl, hours = ARGV[1], tonumber(ARGV[2])
local first = 3 + hours
local n = (#ARGV - first + 1) / 5
local LIMIT = 1e16
local EXACT = 9007199254740992  -- 2^53: sums of integers below this are exact in Lua's doubles

local fresh = {}
local slots = {}
local function slot(h, metric)
  local name = h .. '|' .. metric
  local s = slots[name]
  if not s then
    s = {hash = KEYS[1 + h], metric = metric, count = 0, sum = 0, size = 0}
    slots[name] = s
  end
  return s
end

-- Pass 1: claim each id (SET NX: one call tells whether it is new, a repeat within the batch included)
-- and add up what the new events bring. No counter is written yet.
for i = 0, n - 1 do
  if redis.call('SET', KEYS[2 + hours + i], '1', 'NX', 'EX', ttl) then
    local a = first + i * 5
    local kind, value = ARGV[a + 2], ARGV[a + 3]
    local s = slot(tonumber(ARGV[a]), ARGV[a + 1])
    fresh[#fresh + 1] = i
    if kind == 'c' then
      s.count = s.count + 1
    elseif kind == 's' then
      local v = tonumber(value)
      s.sum, s.size, s.summed = s.sum + v, s.size + math.abs(v), true
    elseif kind == 'm' then
      local v = tonumber(value)
      if s.top == nil or v > s.top then s.top, s.top_raw = v, value end
    elseif kind == 'l' then
      local v, t = tonumber(value), tonumber(ARGV[a + 4])
      if s.at == nil or t > s.at or (t == s.at and v > s.last) then
        s.at, s.last, s.last_raw = t, v, ARGV[a + 4] .. ':' .. value
      end
    end
  end
end

-- A sum that would overflow refuses the batch: the ids claimed above are released, so the script
-- leaves no trace (nothing else ran in between: a script is atomic).
for _, s in pairs(slots) do
  if s.summed then
    local total = tonumber(redis.call('HGET', s.hash, s.metric .. '|s') or '0') + s.sum
    if total > LIMIT or total < -LIMIT then
      for _, i in ipairs(fresh) do redis.call('DEL', KEYS[2 + hours + i]) end
      return redis.error_reply('overflow ' .. s.metric)
    end
  end
end

-- Pass 2: count the new events. Sums are added once per hour and metric when exact in a double, else
-- event by event (HINCRBY on the integers as sent); distinct values are set one by one.
for _, i in ipairs(fresh) do
  local a = first + i * 5
  local kind = ARGV[a + 2]
  if kind == 'u' then
    redis.call('HSET', KEYS[1 + tonumber(ARGV[a])], ARGV[a + 1] .. '|u|' .. ARGV[a + 3], '1')
  elseif kind == 's' and slots[ARGV[a] .. '|' .. ARGV[a + 1]].size >= EXACT then
    redis.call('HINCRBY', KEYS[1 + tonumber(ARGV[a])], ARGV[a + 1] .. '|s', ARGV[a + 3])
  end
end

local touched = {}
for _, s in pairs(slots) do
  if s.count > 0 then redis.call('HINCRBY', s.hash, s.metric .. '|c', s.count) end
  if s.summed and s.size < EXACT then redis.call('HINCRBY', s.hash, s.metric .. '|s', string.format('%d', s.sum)) end
  if s.top_raw then
    local field = s.metric .. '|m'
    local current = redis.call('HGET', s.hash, field)
    if not current or s.top > tonumber(current) then redis.call('HSET', s.hash, field, s.top_raw) end
  end
  if s.last_raw then
    local field = s.metric .. '|l'
    local current = redis.call('HGET', s.hash, field)
    local newer = not current
    if current then
      local colon = string.find(current, ':', 1, true)
      local t, v = tonumber(string.sub(current, 1, colon - 1)), tonumber(string.sub(current, colon + 1))
      newer = s.at > t or (s.at == t and s.last > v)
    end
    if newer then redis.call('HSET', s.hash, field, s.last_raw) end
  end
  touched[s.hash] = true
end
for h = 1, hours do
  if touched[KEYS[1 + h]] then redis.call('SADD', KEYS[1], ARGV[2 + h]) end
end
return {#fresh, n - #fresh}
