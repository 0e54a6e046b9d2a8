package handlers

// HoldDecodingSlots takes every slot for decoding a picture, as decodes under way would, until
// release is called.
func (h *Handler) HoldDecodingSlots() (release func()) {
	for range cap(h.pictureSlots) {
		h.pictureSlots <- struct{}{}
	}
	return func() {
		for range cap(h.pictureSlots) {
			<-h.pictureSlots
		}
	}
}
