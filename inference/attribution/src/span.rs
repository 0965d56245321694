pub struct SpanIndex;
