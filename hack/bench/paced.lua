-- wrk script for the paced load: each connection waits 5 ms after a
-- response before sending its next request.
function delay()
  return 5
end
