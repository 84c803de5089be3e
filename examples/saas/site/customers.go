package site

// A caseStudy is a customer's story, shown at /customers/{industry}.
type caseStudy struct {
	Industry string // the CRM's trait "industry": fintech, healthcare, retail
	Label    string // the industry, for people
	Company  string
	Title    string
	Story    []string // paragraphs
	Results  []string
	Quote    string
	Who      string
}

// caseStudies are the stories, one per industry that the CRM knows.
var caseStudies = []caseStudy{
	{
		Industry: "fintech", Label: "Financial services", Company: "Northwind Bank",
		Title: "How Northwind Bank pages the right engineer in 90 seconds",
		Story: []string{
			"Northwind runs card payments for 400,000 customers on 120 services. Alerts used to land in a shared mailbox, and the first person to notice opened a ticket.",
			"With Relay, each service has an owner and a rota; an alert pages the engineer on call, escalates after five minutes, and opens the incident channel by itself.",
		},
		Results: []string{"72% faster time to acknowledge", "one rota per service, owned by the team that runs it", "audit log for the regulator, exported monthly"},
		Quote:   "We stopped asking who is looking at it. Relay tells us, before the customers notice.",
		Who:     "Priya Raman, head of platform, Northwind Bank",
	},
	{
		Industry: "healthcare", Label: "Healthcare", Company: "Cedar Clinics",
		Title: "How Cedar Clinics keeps patient portals up at 3 a.m.",
		Story: []string{
			"Cedar's twelve clinics share one patient portal and a small IT team. Night-time outages waited for the morning shift.",
			"Relay's quiet hours page only for what patients feel; everything else waits for the day, with a summary. Every acknowledgement is logged for the compliance team.",
		},
		Results: []string{"portal availability up from 99.5% to 99.95%", "night pages down by two thirds", "compliance review in an afternoon, not a week"},
		Quote:   "Our engineers sleep, and the portal stays up. I did not think we could have both.",
		Who:     "Dr. Tomás Ortega, CIO, Cedar Clinics",
	},
	{
		Industry: "retail", Label: "Retail", Company: "Juniper Outfitters",
		Title: "How Juniper Outfitters got through Black Friday without a war room",
		Story: []string{
			"Juniper's web shop takes a third of its yearly orders in one week. Last year, support answered the same question 6,000 times: is checkout down?",
			"This year, Relay's status page answered it, updated by the incident itself, while the on-call engineer fixed the payment provider's timeout.",
		},
		Results: []string{"40,000 customers informed by the status page", "support tickets during incidents down 80%", "no war room: one engineer and a rota"},
		Quote:   "Black Friday was boring. That is the highest praise I have for an on-call tool.",
		Who:     "Sam Okafor, engineering manager, Juniper Outfitters",
	},
}

// caseStudyFor returns the story of an industry, or nil.
func caseStudyFor(industry string) *caseStudy {
	for i := range caseStudies {
		if caseStudies[i].Industry == industry {
			return &caseStudies[i]
		}
	}
	return nil
}
