(function(w,d){var s=d.currentScript,b=(s&&s.src||"/_tailor/t.js").replace(/t\.js(\?.*)?$/,""),u=b+"v1/track";
function id(){try{return crypto.randomUUID()}catch(e){return Date.now().toString(36)+Math.random().toString(36).slice(2)}}
function send(x,o,f){o.messageId=id();o.timestamp=(new Date).toISOString();
o.context={page:{path:location.pathname,url:location.href,referrer:d.referrer,title:d.title}};o=JSON.stringify(o);
if(!f)try{if(navigator.sendBeacon&&navigator.sendBeacon(x,o))return!0}catch(e){}
try{fetch(x,{method:"POST",body:o,keepalive:!0,credentials:"same-origin"});return!0}catch(e){return!1}}
function track(n,p){if(!n)return!1;return send(u,{type:"track",event:String(n),properties:p||{}})}
function page(p){p=p||{};p.path=p.path||location.pathname;p.url=p.url||location.href;p.referrer=p.referrer||d.referrer;p.title=p.title||d.title;
return send(b+"v1/page",{type:"page",properties:p},1)}
d.addEventListener("click",function(e){var t=e.target,a,p={},i,k;t=t&&t.closest&&t.closest("[data-track]");if(!t)return;a=t.attributes;
for(i=0;i<a.length;i++){k=a[i].name;if(k.indexOf("data-track-")==0)p[k.slice(11).replace(/-/g,"_")]=a[i].value}
track(t.getAttribute("data-track"),p)},!0);
var q=w.tailor;w.tailor={track:track,page:page};
if(s&&s.hasAttribute("data-page"))page(s.getAttribute("data-category")?{category:s.getAttribute("data-category")}:{});
if(q&&q.length)for(var i=0;i<q.length;i++)track.apply(null,q[i])})(window,document);
